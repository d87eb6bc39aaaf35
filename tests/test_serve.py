"""`rnnac serve`: the API through Starlette's test client, checked against the Completer; batching;
a real server process on a loopback port (answers, SIGTERM); the page in a headless browser."""

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install 'rnnac[serve]'")
from conftest import lexicon_checkpoint, rnnac_command  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

import rnnac  # noqa: E402
from rnnac.inference.completer import Completer  # noqa: E402
from rnnac.inference.score import score_words  # noqa: E402
from rnnac.inference.typos import Channel  # noqa: E402
from rnnac.interfaces.records import completion_record, score_record  # noqa: E402
from rnnac.interfaces.serve import MAX_BATCH, Served, create_app  # noqa: E402
from rnnac.storage.checkpoint import save_checkpoint  # noqa: E402

TINY_VOCAB = rnnac.Vocab("abc")


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    model = rnnac.RNN.init(len(TINY_VOCAB), 6, seed=1, dtype=np.float64)
    path = tmp_path_factory.mktemp("tiny") / "tiny.npz"
    meta = {"chars": TINY_VOCAB.chars, "activation": "tanh", "hidden_size": 6, "dtype": "float64",
            "config": {"data": {"lowercase": True}}, "step": 1, "epoch": 1, "best_val_loss": 1.0, "rng_state": {}}
    save_checkpoint(path, model.params, meta)
    return str(path)


@pytest.fixture(scope="module")
def models(tiny_path):
    from rnnac.storage.checkpoint import BUNDLED_MODEL

    return {"en": Served.load("en", str(BUNDLED_MODEL)), "tiny": Served.load("tiny", tiny_path)}


@pytest.fixture(scope="module")
def client(models):
    with TestClient(create_app(models)) as client:
        yield client


@pytest.fixture(scope="module")
def en():
    return Completer.load()


@pytest.fixture(scope="module")
def catalogue_path(tmp_path_factory):
    """A model whose lexicon is a catalogue of names of several words (test_wordstarts.CATALOGUE)."""
    from test_wordstarts import CATALOGUE, CATALOGUE_VOCAB

    return lexicon_checkpoint(tmp_path_factory.mktemp("catalogue") / "catalogue.npz", CATALOGUE, CATALOGUE_VOCAB, seed=2)


def test_get_complete_is_the_clis_record(client, en):
    response = client.get("/complete", params={"q": "Rec", "k": 3})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == json.loads(json.dumps(completion_record(en.complete("Rec", 3))))
    assert [c["word"] for c in response.json()["completions"]] == ["Record", "Received", "Recent"]


@pytest.mark.parametrize("params, keywords", [
    ({"max_edits": 1}, {"max_edits": 1}),
    ({"max_edits": "1", "edit_prob": "0.1", "keyboard": "none"}, {"max_edits": 1, "channel": Channel.parse(["0.1"], "none")}),
    ({"known_only": "1", "lambda": "0.3"}, {"known_only": True, "mixture_lambda": 0.3}),
    ({"open": "true"}, {"open": True}),
    ({"beam": 3}, {"beam": 3}),
    ({"budget": 5, "max_length": 6}, {"budget": 5, "max_length": 6}),
    ({"new": 0}, {"new": 0}),
    ({"new": "3", "lambda": "0.1"}, {"new": 3, "mixture_lambda": 0.1}),
])
def test_complete_options_reach_the_search(client, en, params, keywords):
    got = client.get("/complete", params={"q": "wrold", "k": 4, **params}).json()
    expected = en.complete_many(["wrold"], 4, **keywords)[0]
    assert got == json.loads(json.dumps(completion_record(expected)))


def test_post_complete_answers_a_batch_in_order(client, en):
    prefixes = ["ab", "x##", "", "ab", "wrold"]
    response = client.post("/complete", json={"prefixes": prefixes, "k": 2, "max_edits": 1})
    assert response.status_code == 200
    results = response.json()["results"]
    expected = en.complete_many(prefixes, 2, max_edits=1)
    assert results == [json.loads(json.dumps(completion_record(r))) for r in expected]
    assert "error" in results[1] and results[0] == results[3]
    assert client.post("/complete", json={"prefixes": []}).json() == {"version": 1, "results": []}


def test_word_start_matching(client, en, catalogue_path):
    got = client.get("/complete", params={"q": "rec", "k": 3, "match": "word-start"}).json()
    assert got == json.loads(json.dumps(completion_record(en.complete("rec", 3, match="word-start"))))
    catalogue = Completer.load(catalogue_path)
    with TestClient(create_app({"shop": Served.load("shop", catalogue_path)})) as shop:
        for q in ("gal", "sam s24", "S24"):
            got = shop.get("/complete", params={"q": q, "match": "word-start"}).json()
            assert got == json.loads(json.dumps(completion_record(catalogue.complete(q, match="word-start"))))
        assert [(c["word"], c["match"]) for c in shop.get("/complete?q=gal&match=word-start").json()["completions"]] == [
            ("Samsung Galaxy S24", 8)]
        batch = shop.post("/complete", json={"prefixes": ["iph", "pix"], "match": "word-start", "open": True}).json()
        assert [r["completions"][0]["word"] for r in batch["results"]] == ["Apple iPhone 15", "Google Pixel 8"]


def test_edit_prob_may_repeat(client, en):
    got = client.get("/complete", params=[("q", "wrold"), ("max_edits", "1"), ("edit_prob", "sub=0.3"), ("edit_prob", "trans=0.001")])
    channel = Channel.parse(["sub=0.3", "trans=0.001"])
    assert got.json() == json.loads(json.dumps(completion_record(en.complete("wrold", max_edits=1, channel=channel))))
    assert got.json() != client.get("/complete", params={"q": "wrold", "max_edits": 1, "edit_prob": "trans=0.001"}).json()


def test_an_unknown_character_is_an_error_record_not_a_failure(client):
    response = client.get("/complete", params={"q": "r#c"})
    assert response.status_code == 200 and "'#'" in response.json()["error"]
    assert client.get("/complete", params={"q": "r#c", "max_edits": 1}).json()["completions"]  # an edit can take it


def test_models_are_chosen_by_name(client, tiny_path):
    tiny = Completer.load(tiny_path)
    got = client.get("/complete", params={"q": "ab", "model": "tiny", "k": 3}).json()
    assert got == json.loads(json.dumps(completion_record(tiny.complete("ab", 3))))
    info = client.get("/info").json()
    assert info["default"] == "en" and set(info["models"]) == {"en", "tiny"}
    assert info["models"]["tiny"]["hidden_size"] == 6 and info["models"]["en"]["lexicon_words"] == 50_000
    assert info["models"]["en"]["lexicon_built"] in (True, False)  # built on a thread of its own (Lexicons.build_in_background)
    assert client.get("/health").json() == {"status": "ok"}


def test_score(client, en):
    one = client.get("/score", params={"w": "record", "chars": "1"}).json()
    assert one == json.loads(json.dumps(score_record(score_words(en, ["record"])[0], per_char=True)))
    mixed = client.get("/score", params=[("w", "record"), ("w", "r#"), ("w", ""), ("mixture", "1"), ("lambda", "0.5")]).json()
    expected = score_words(en, ["record", "r#", ""], en.lexicon, 0.5)
    assert [r.get("error") for r in mixed["results"]][2] == "the empty word is not a word"
    assert mixed == {"version": 1, "results": [json.loads(json.dumps(score_record(s))) for s in expected]}


@pytest.mark.parametrize("method, url, body, message", [
    ("get", "/complete", None, "give the prefix"),
    ("get", "/complete?q=" + "a" * 1001, None, "1,001 characters"),
    ("get", "/complete?q=a&k=0", None, "k must be in [1, 1000]"),
    ("get", "/complete?q=a&k=1001", None, "k must be in [1, 1000]"),
    ("get", "/complete?q=a&k=five", None, "k must be an integer"),
    ("get", "/complete?q=a&lambda=2", None, "lambda must be in"),
    ("get", "/complete?q=a&lambda=nan", None, "lambda must be in"),
    ("get", "/complete?q=a&max_edits=4", None, "max_edits must be in [0, 3]"),
    ("get", "/complete?q=a&max_edits=1&beam=2", None, "beam and max_edits"),
    ("get", "/complete?q=a&known_only=1&open=1", None, "known_only and open"),
    ("get", "/complete?q=a&open=maybe", None, "open must be true or false"),
    ("get", "/complete?q=a&model=fr", None, "unknown model 'fr'"),
    ("get", "/complete?q=a&colour=red", None, "unknown option 'colour'"),
    ("get", "/complete?q=a&max_edits=1&edit_prob=sub%3D2", None, "edit probabilities"),
    ("get", "/complete?q=a&keyboard=dvorak", None, "keyboard"),
    ("get", "/complete?q=ab&model=tiny&known_only=1", None, "carries no lexicon"),
    ("get", "/complete?q=a&match=words", None, "match must be prefix or word-start, got 'words'"),
    ("get", "/complete?q=a&match=word-start&max_edits=1", None, "match word-start and max_edits cannot be used together"),
    ("get", "/complete?q=a&match=word-start&beam=2", None, "match word-start and beam cannot be used together"),
    ("get", "/complete?q=ab&model=tiny&match=word-start", None, "match word-start needs a lexicon: model 'tiny' carries none"),
    ("post", "/complete", b'{"prefixes": ["a"], "match": ["word-start"]}', "match must be prefix or word-start"),
    ("post", "/complete", b"{not json", "malformed JSON"),
    ("post", "/complete", b"[1, 2]", "a JSON object"),
    ("post", "/complete", b'{"prefixes": "rec"}', "give the prefixes"),
    ("post", "/complete", b'{"prefixes": [1]}', "must be a string"),
    ("post", "/complete", "one prefix too many", "10,001 prefixes"),
    ("post", "/complete", b'{"prefixes": ["a"], "q": "b"}', "unknown option 'q'"),
    ("post", "/complete", b'{"prefixes": ["a"], "k": 2.5}', "k must be an integer"),
    ("post", "/complete", b'{"prefixes": ["a"], "model": ["en"]}', "unknown model"),
    ("post", "/complete", b'{"prefixes": ["\\ud800"]}', "not valid Unicode"),
    ("get", "/score", None, "give a word"),
    ("get", "/score?w=ab&lambda=0.5", None, "lambda goes with mixture"),
    ("get", "/score?w=ab&mixture=1&lambda=1", None, "lambda must be in [0.0, 1.0)"),
    ("get", "/score?w=ab&model=tiny&mixture=1", None, "carries no lexicon"),
])
def test_bad_requests_get_400_and_an_error(client, method, url, body, message):
    if body == "one prefix too many":
        body = json.dumps({"prefixes": ["a"] * (MAX_BATCH + 1)}).encode()
    response = client.get(url) if method == "get" else client.post(url, content=body)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"} and message in response.json()["error"]


def test_other_paths_and_methods_answer_in_json(client):
    assert client.get("/nothing").status_code == 404 and "error" in client.get("/nothing").json()
    assert client.put("/complete").status_code == 405
    huge = client.post("/complete", content=b"{}", headers={"content-length": str(2**30)})
    assert huge.status_code == 400


def test_the_page_is_self_contained(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="box"' in page.text and "/complete" in page.text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text)  # nothing fetched from elsewhere


class FakeCompleter:
    """Records each complete_many call; answers each prefix with itself."""

    has_lexicon = True

    def __init__(self, during_first_call=None):
        self.calls, self.during_first_call = [], during_first_call

    def complete_many(self, prefixes, **keywords):
        self.calls.append((list(prefixes), keywords["k"]))
        if len(self.calls) == 1 and self.during_first_call:
            self.during_first_call()
        return [f"answer to {p}" for p in prefixes]

    def pinned(self):  # the list of a batch's first chunk: here, no list to change
        return self


def batcher_with(completer):
    from rnnac.interfaces.serve import Batcher, Options

    return Batcher({"m": Served("m", "m.npz", completer, {})}), Options("m"), Options("m", k=3)


def test_a_lone_request_is_searched_at_once_and_alone():
    completer = FakeCompleter()
    batcher, five, _ = batcher_with(completer)
    assert asyncio.run(batcher.complete(five, ["a"])) == ["answer to a"]
    assert completer.calls == [(["a"], 5)]


def test_requests_arriving_together_share_one_search_per_options():
    completer = FakeCompleter()
    batcher, five, three = batcher_with(completer)

    async def burst():
        return await asyncio.gather(batcher.complete(five, ["a"]), batcher.complete(three, ["x"]),
                                    batcher.complete(five, ["b", "c"]), batcher.complete(five, ["a"]))

    assert asyncio.run(burst()) == [["answer to a"], ["answer to x"], ["answer to b", "answer to c"], ["answer to a"]]
    assert completer.calls == [(["a", "b", "c", "a"], 5), (["x"], 3)]
    assert (batcher.requests, batcher.searches) == (4, 2)


def test_requests_arriving_during_a_search_go_together_next():
    later = []
    completer = FakeCompleter(during_first_call=lambda: later.extend(
        asyncio.ensure_future(batcher.complete(five, [p])) for p in ("d", "e", "f")))
    batcher, five, _ = batcher_with(completer)

    async def scenario():
        first = await batcher.complete(five, ["a"])
        return first, await asyncio.gather(*later)

    assert asyncio.run(scenario()) == (["answer to a"], [["answer to d"], ["answer to e"], ["answer to f"]])
    assert completer.calls == [(["a"], 5), (["d", "e", "f"], 5)]


def test_a_big_batch_goes_in_chunks_and_lets_others_in_between():
    from rnnac.interfaces.serve import CHUNK

    big = [f"p{i}" for i in range(2 * CHUNK + 1)]  # no typos: chunks of CHUNK
    later = []
    completer = FakeCompleter(during_first_call=lambda: later.append(asyncio.ensure_future(batcher.complete(five, ["x"]))))
    batcher, five, _ = batcher_with(completer)

    async def scenario():
        answer = await batcher.complete(five, big)
        return answer, await later[0]

    answer, small = asyncio.run(scenario())
    assert answer == [f"answer to {p}" for p in big] and small == ["answer to x"]
    assert [calls for calls, _ in completer.calls] == [big[:CHUNK], ["x"], big[CHUNK : 2 * CHUNK], big[2 * CHUNK :]]
    assert (batcher.requests, batcher.searches) == (2, 4)


def test_a_small_request_batched_with_a_big_one_is_answered_first():
    from rnnac.interfaces.serve import CHUNK

    completer = FakeCompleter()
    batcher, five, _ = batcher_with(completer)
    big = [f"p{i}" for i in range(3 * CHUNK)]
    order = []

    async def ask(prefixes):
        answer = await batcher.complete(five, prefixes)
        order.append(len(prefixes))
        return answer

    async def burst():
        return await asyncio.gather(ask(big), ask(["x"]))

    answers = asyncio.run(burst())
    assert answers == [[f"answer to {p}" for p in big], ["answer to x"]] and order == [1, 3 * CHUNK]
    assert completer.calls[0][0][0] == "x"  # searched in the first chunk, before the big batch's prefixes


def test_a_big_batch_stops_when_its_clients_have_gone():
    from rnnac.interfaces.serve import CHUNK

    completer = FakeCompleter()
    batcher, five, _ = batcher_with(completer)

    async def scenario():
        request = asyncio.ensure_future(batcher.complete(five, [f"p{i}" for i in range(10 * CHUNK)]))
        while not completer.calls:
            await asyncio.sleep(0)
        request.cancel()  # the client left
        await asyncio.sleep(0.05)

    asyncio.run(scenario())
    assert len(completer.calls) == 1


def test_a_failed_search_fails_its_batch_only():
    from rnnac.interfaces.serve import BadRequest

    class Failing(FakeCompleter):
        def complete_many(self, prefixes, **keywords):
            if "boom" in prefixes:
                raise BadRequest("no")
            return super().complete_many(prefixes, **keywords)

    batcher, five, three = batcher_with(Failing())

    async def burst():
        return await asyncio.gather(batcher.complete(five, ["boom"]), batcher.complete(three, ["ok"]), return_exceptions=True)

    failed, fine = asyncio.run(burst())
    assert isinstance(failed, BadRequest) and fine == ["answer to ok"]


def test_serve_without_the_extra_says_what_to_install(monkeypatch):
    from click.testing import CliRunner

    from rnnac.interfaces.cli import cli

    for missing in ("starlette", "uvicorn"):
        with monkeypatch.context() as patch:
            patch.setitem(sys.modules, missing, None)  # importing it now fails
            result = CliRunner().invoke(cli, ["serve", "--port", "0"])
        assert result.exit_code == 1
        assert result.stderr == "Error: rnnac serve needs Starlette and uvicorn: pip install 'rnnac[serve]'\n"


# --- a real server process ------------------------------------------------------------------


class Server:
    """`rnnac serve --port 0` in a subprocess; its URL read from the line it prints."""

    def __init__(self, *args):
        self.process = subprocess.Popen([*rnnac_command(), "serve", "--port", "0", *args], stderr=subprocess.PIPE, text=True)
        line = self.process.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line + self.process.stderr.read()
        self.url = f"http://127.0.0.1:{match.group(1)}"

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=60) as response:
            return response.status, json.loads(response.read())

    def post(self, path: str, body: dict):
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


@pytest.fixture
def server():
    running = Server()
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait()


def test_a_real_server_answers_over_loopback(server, en):
    status, record = server.get("/complete?q=wrold&k=2&max_edits=1")
    assert status == 200 and record == json.loads(json.dumps(completion_record(en.complete("wrold", 2, max_edits=1))))
    with pytest.raises(urllib.error.HTTPError) as bad:
        server.get("/complete?q=a&k=0")
    assert bad.value.code == 400 and "k must be" in json.loads(bad.value.read())["error"]
    assert server.stop() == 0


def test_concurrent_clients_of_a_real_server_share_searches(server):
    from concurrent.futures import ThreadPoolExecutor

    words = [w for w in open("data/words.tsv").read().split()[::2] if w.isalpha()][:200]
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(lambda w: server.get(f"/complete?q={w[:3]}&k=3"), words))
    assert all(status == 200 and record["prefix"] == w[:3] and record["completions"] for (status, record), w in zip(answers, words))
    served = server.get("/info")[1]["served"]
    assert served["requests"] == len(words) and served["searches"] < len(words)


def test_a_keystroke_is_answered_while_a_big_batch_is_searched(server):
    prefixes = [w[:5] for w in open("data/words.tsv").read().split()[::2][:2000] if w.isalpha()]
    took, answer = {}, {}

    def post():
        start = time.perf_counter()
        answer["status"], answer["body"] = server.post("/complete", {"prefixes": prefixes, "max_edits": 1})
        took["post"] = time.perf_counter() - start

    thread = threading.Thread(target=post)
    thread.start()
    time.sleep(0.3)  # the batch is being searched, a chunk at a time
    start = time.perf_counter()
    status, record = server.get("/complete?q=rec&k=1")
    took["get"] = time.perf_counter() - start
    thread.join(120)
    assert status == 200 and record["completions"][0]["word"] == "record"
    assert answer["status"] == 200 and len(answer["body"]["results"]) == len(prefixes)
    assert took["get"] < took["post"] / 4  # it waited for a chunk of the batch at most, not for all of it


def test_sigterm_lets_a_request_in_flight_finish(server):
    prefixes = [w[:4] for w in open("data/words.tsv").read().split()[::2][:1500] if w.isalpha()]
    answer = {}

    def post():
        answer["status"], answer["body"] = server.post("/complete", {"prefixes": prefixes, "max_edits": 1})

    thread = threading.Thread(target=post)
    thread.start()
    time.sleep(0.5)  # the batch is being searched
    server.process.send_signal(signal.SIGTERM)
    thread.join(120)
    assert answer["status"] == 200 and len(answer["body"]["results"]) == len(prefixes)
    assert server.process.wait(60) == 0


def test_a_port_in_use_is_one_error_line(server):
    port = server.url.rsplit(":", 1)[1]
    result = subprocess.run([*rnnac_command(), "serve", "--port", port], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.startswith(f"Error: cannot listen on 127.0.0.1:{port}")
    assert len(result.stderr.splitlines()) == 1 and result.stdout == ""


# --- the page in a real browser --------------------------------------------------------------


def browser_or_skip():
    """A headless Chromium driven by selenium; skips when there is none, unless RNNAC_REQUIRE_BROWSER=1 (CI)."""
    missing = None
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing = "selenium is not installed (pip install selenium)"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if missing is None and not (chromium and driver):
        missing = "no chromium and chromedriver (apt-get install chromium chromium-driver)"
    if missing:
        if os.environ.get("RNNAC_REQUIRE_BROWSER") == "1":
            pytest.fail(f"RNNAC_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def test_the_page_completes_as_you_type(server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser = browser_or_skip()
    try:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 20)
        wait.until(lambda b: "H = 384" in b.find_element(By.ID, "model").text)  # the model's name and size
        assert "en" in browser.find_element(By.ID, "model").text
        box = browser.find_element(By.ID, "box")
        box.send_keys("rec")
        wait.until(lambda b: "record" in [li.find_element(By.CLASS_NAME, "w").text for li in b.find_elements(By.CSS_SELECTOR, "#list li")])
        words = [li.text.split("\n")[0] for li in browser.find_elements(By.CSS_SELECTOR, "#list li")]
        assert words[0] == "record" and all("%" in li.text for li in browser.find_elements(By.CSS_SELECTOR, "#list li"))
        box.send_keys(Keys.ARROW_DOWN)  # the second one
        assert "active" in browser.find_elements(By.CSS_SELECTOR, "#list li")[1].get_attribute("class")
        box.send_keys(Keys.ARROW_UP, Keys.TAB)  # back to the first, accepted
        wait.until(lambda b: b.find_element(By.ID, "box").get_attribute("value") == "record")
        assert browser.find_elements(By.CSS_SELECTOR, "#list li") == []
    finally:
        browser.quit()


def test_the_page_matches_any_word_on_request(catalogue_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = browser_or_skip()
    server = Server("-c", catalogue_path)
    try:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 20)
        wait.until(lambda b: "H = 8" in b.find_element(By.ID, "model").text)

        def shown():  # read in one go: the list is drawn anew at each answer
            return browser.execute_script("return [...document.querySelectorAll('#list li .w')].map(w => w.textContent)")

        browser.find_element(By.ID, "box").send_keys("gal")
        wait.until(lambda b: shown() and all(word.startswith("gal") for word in shown()))  # a prefix: the model's inventions
        browser.find_element(By.ID, "words").click()
        wait.until(lambda b: shown() == ["Samsung Galaxy S24"])
        browser.find_element(By.ID, "typos").click()  # typos are forgiven in prefixes only: the boxes take turns
        assert not browser.find_element(By.ID, "words").is_selected()
    finally:
        browser.quit()
        server.stop()
        if server.process.poll() is None:
            server.process.kill()


def test_the_page_marks_invented_strings_as_the_api_does(tmp_path):
    """In Chromium: a `*` after each completion the server says is not in the list, and only there."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from test_live import tiny_checkpoint

    browser = browser_or_skip()
    server = Server("-c", tiny_checkpoint(tmp_path / "tiny.npz"))
    try:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 20)
        wait.until(lambda b: "H = 6" in b.find_element(By.ID, "model").text)
        expected = server.get("/complete?k=8&q=a")[1]["completions"]
        assert {c["known"] for c in expected} == {True, False}  # both kinds, to tell apart
        browser.find_element(By.ID, "box").send_keys("a")
        script = "return [...document.querySelectorAll('#list li .w')].map(w => [w.firstChild.textContent, w.textContent])"
        wait.until(lambda b: len(b.execute_script(script)) == len(expected))
        assert browser.execute_script(script) == [[c["word"], c["word"] + ("" if c["known"] else "*")] for c in expected]
    finally:
        browser.quit()
        server.stop()
        if server.process.poll() is None:
            server.process.kill()
