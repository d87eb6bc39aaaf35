"""Word lists of the shapes users bring, generated the same for the same seed: a product
catalogue and a shell history (flat package-like names come from bench/synthetic_names.py).

    python3 bench/lists.py catalogue [--n 3000] [--seed 0] > catalogue.csv
    python3 bench/lists.py history [--n 4000] [--seed 0] > history.txt

- catalogue: `name,count` CSV with a header. Names are brand, line, model and variants
  ("Škoda Octavia Combi 2.0 TDI Style", "Apple iPhone 15 Pro Max 256 GB Titanium Blue"): spaces,
  accented brands and words, most of them longer than 32 characters; counts are Zipf-like
  (count ~ 1 / rank), as sales are.
- history: what bash's `history` prints (`  101  git push`): n command lines, drawn from a few
  hundred distinct commands with Zipf-like weights, so that repeats are the counts.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

BRANDS = {  # brand -> (lines, kinds of variant)
    "Apple": (["iPhone 15", "iPhone 15 Pro", "iPhone 15 Pro Max", "iPad Air", "MacBook Air", "MacBook Pro", "Watch Series 9"],
              ["storage", "colour"]),
    "Samsung": (["Galaxy S24", "Galaxy S24 Ultra", "Galaxy A55", "Galaxy Tab S9", "Galaxy Buds 3"], ["storage", "colour"]),
    "Škoda": (["Octavia Combi", "Fabia", "Superb", "Kodiaq", "Enyaq iV"], ["engine", "trim"]),
    "Citroën": (["C3 Aircross", "C4 Picasso", "Berlingo", "C5 X"], ["engine", "trim"]),
    "Peugeot": (["208", "308 SW", "2008", "5008"], ["engine", "trim"]),
    "Nestlé": (["Crème brûlée dessert", "Café au lait capsules", "Chocapic céréales", "Nesquik cacao"], ["pack"]),
    "Häagen-Dazs": (["Crème caramel glace", "Cookies & Cream", "Dulce de Leche", "Macadamia Nut Brittle"], ["pack"]),
    "Löwenbräu": (["Original Helles", "Oktoberfestbier", "Alkoholfrei"], ["pack"]),
    "Moët & Chandon": (["Impérial Brut", "Rosé Impérial", "Nectar Impérial"], ["pack"]),
    "Bosch": (["Serie 6 lave-vaisselle", "Serie 4 Waschmaschine", "Professional GSR 18V perceuse", "Kühlschrank KGN39"],
              ["model"]),
    "Sony": (["WH-1000XM5 headphones", "PlayStation 5 Slim", "Alpha 7 IV camera", "Bravia XR téléviseur"], ["colour"]),
    "Dyson": (["V15 Detect aspirateur", "Airwrap Complete", "Supersonic sèche-cheveux", "Pure Cool purificateur"], ["colour"]),
    "Zürich Kaffee": (["Espresso Crème", "Café Royal Lungo", "Décaféiné doux"], ["pack"]),
    "Øresund Design": (["Smørrebrød platter", "Skål glass set", "Fjäll chair"], ["colour"]),
    "Łódź Textiles": (["Bawełna bath towel", "Żakard throw", "Lniany tablecloth"], ["colour"]),
}
VARIANTS = {
    "storage": ["64 GB", "128 GB", "256 GB", "512 GB", "1 TB"],
    "colour": ["Black", "White", "Titanium Blue", "Midnight", "Crème", "Rosé Gold", "Silver", "Graphite"],
    "engine": ["1.0 TSI", "1.5 TSI", "2.0 TDI", "1.2 PureTech", "Électrique 82 kWh", "Hybrid 225"],
    "trim": ["Active", "Ambition", "Style", "Laurin & Klement", "Feel", "Shine", "Allure"],
    "pack": ["6 x 33 cl", "12 pièces", "500 ml", "1 kg", "Édition limitée"],
    "model": ["SMS6ECI07E", "WAN28258", "06019H1108", "KGN39VLEB"],
    "edition": ["2023", "2024", "Édition spéciale", "Bundle", "Reconditionné", "Refurbished", "Gift Set", "Starter Kit"],
}

COMMANDS = [
    "git status", "git pull", "git push", "git push origin main", "git log --oneline", "git diff", "git add -A",
    "git commit -m 'wip'", "git checkout main", "git checkout -b feature", "git stash", "git stash pop", "git rebase -i HEAD~3",
    "ls", "ls -la", "cd ..", "cd ~/src", "cd ", "pwd", "make", "make test", "make bench", "python3 -m pytest -q",
    "docker ps", "docker compose up -d", "docker compose logs -f", "docker images", "htop", "df -h", "du -sh *",
    "ssh build01", "ssh deploy@web02", "vim README.md", "code .", "npm install", "npm run dev", "npm test",
    "kubectl get pods", "kubectl get pods -n kube-system", "kubectl describe pod api-7d9f", "kubectl apply -f deploy.yaml",
]
KUBE_NAMESPACES = ["default", "staging", "prod", "monitoring", "ingress-nginx"]
KUBE_APPS = ["api", "web", "worker", "scheduler", "redis", "postgres", "grafana", "prometheus"]


def catalogue(n: int, seed: int = 0) -> list[tuple[str, int]]:
    """n distinct product names with Zipf-like counts, most sold first."""
    rng = np.random.default_rng(seed)
    names: dict[str, None] = {}
    brands = list(BRANDS)
    while len(names) < n:
        brand = brands[rng.integers(len(brands))]
        lines, kinds = BRANDS[brand]
        parts = [brand, lines[rng.integers(len(lines))]]
        parts += [VARIANTS[kind][rng.integers(len(VARIANTS[kind]))] for kind in [*kinds, "edition"]
                  if rng.random() < (0.05 if kind == "edition" else 0.3)]
        names[" ".join(parts)] = None
    order = list(names)
    rng.shuffle(order)
    counts = np.maximum(1, np.round(20000 / np.arange(1, n + 1) ** 0.9)).astype(int)  # (n,) by rank
    return list(zip(order, counts.tolist()))


def history(n: int, seed: int = 0) -> list[str]:
    """n command lines as a shell history holds them, in the order typed."""
    rng = np.random.default_rng(seed)
    commands = list(COMMANDS)
    for app in KUBE_APPS:
        for namespace in KUBE_NAMESPACES:
            commands += [f"kubectl logs -n {namespace} deploy/{app}", f"kubectl logs -f -n {namespace} deploy/{app}",
                         f"kubectl rollout restart -n {namespace} deploy/{app}"]
    weights = 1.0 / np.arange(1, len(commands) + 1) ** 1.1  # (C,)
    order = rng.permutation(len(commands))  # which command is how common
    drawn = rng.choice(len(commands), size=n, p=weights / weights.sum())
    return [commands[order[i]] for i in drawn.tolist()]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["catalogue", "history"])
    parser.add_argument("--n", type=int, default=None, help="entries (catalogue: 3,000) or lines (history: 4,000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = sys.stdout
    if args.kind == "catalogue":
        out.write("name,count\n")
        for name, count in catalogue(args.n or 3000, args.seed):
            out.write(f"{name},{count}\n")
    else:
        for number, command in enumerate(history(args.n or 4000, args.seed), start=1):
            out.write(f"{number:5d}  {command}\n")


if __name__ == "__main__":
    main()
