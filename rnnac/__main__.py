from rnnac.cli import main

main()
