"""`rnnac serve`: completions over HTTP at typing speed, for editors, shells and web pages.

An ASGI app (Starlette) that keeps its models loaded, run by uvicorn; both come with the serve
extra (`pip install 'rnnac[serve]'`). Routes (answers are the CLI's JSON records, rnnac.interfaces.records):

    GET  /complete?q=rec&k=5   one prefix: its record (an unknown character: an error record, 200)
    POST /complete             {"prefixes": [...], "k": 5, ...}: {"version": 1, "results": [...]}
    GET  /score?w=word         one word's score record; several w: {"version": 1, "results": [...]}
    GET  /info, GET /health    the models; {"status": "ok"}
    GET  /                     a page that completes as you type
    POST /accept               {"word": ..., "prefix": ...}: a completion picked, learnt (serve --learn)
    POST /lexicon              {"edits": [...]}: change a model's word list (serve --admin-token)

A live word list (rnnac.inference.live): /accept adds to the picked word's count and /lexicon
adds, removes, sets or boosts words (rnnac.storage.lexedit's edits); each change is appended
to the checkpoint's journal and fsync'd, then applied in memory by one swap of the completer's
lexicons, before the answer: the next request sees it, a request already searching keeps the
list it started with (a big batch's chunks included), and a restart replays the journal. POST
/lexicon needs the token given at start, as `Authorization: Bearer TOKEN`; without one the
route refuses every request (403).

Options, in the query or the body: model (the first served, by default), k, max_edits,
edit_prob, keyboard, known_only, new, open, lambda, beam, budget, max_length, match (prefix or
word-start: lexicon entries with words starting as typed, as `rnnac complete --match`); /score takes model,
mixture, lambda and chars. A bad request (an unknown option or model, a value out of range,
malformed JSON, a prefix over MAX_CHARS characters, k over MAX_K, a batch over MAX_BATCH
prefixes) is a 400 with {"error": ...}.

Batching: requests that arrive together, or while a search runs, are answered by one
complete_many call per model and set of options; a request arriving at an idle server starts
at once (Batcher).

Performance notes: searches run on the event loop's thread, since handing them to a worker
thread was slower (a thread switch for every request, and little overlap, as most of a search
holds the GIL). A chunk of CHUNK prefixes takes about 0.1 s, and a prefix with typos about 8
times as long as one without, hence TYPO_CHUNK. The listening socket names IPPROTO_TCP so that
asyncio sets TCP_NODELAY on each connection: without it a keep-alive client waits about 40 ms
for each answer (Nagle's algorithm against delayed ACKs).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnac.errors import MissingExtraError, RnnacError
from rnnac.inference.options import DEFAULT_DECAY, MATCHES, MAX_BUDGET, MAX_K, MAX_LENGTH
from rnnac.interfaces.records import completion_record, score_record

try:
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route
except ImportError:  # pragma: no cover - the extra is installed wherever tests run
    raise MissingExtraError("rnnac serve needs Starlette and uvicorn: pip install 'rnnac[serve]'") from None

MAX_CHARS = MAX_LENGTH  # characters in a prefix or a word
MAX_BATCH = 10_000  # prefixes or words in one request
MAX_BODY = 16 * 2**20  # bytes of a POST body
CHUNK = 512  # a batch of more prefixes is searched this many at a time, other requests served between
TYPO_CHUNK = 64  # the same with typos
CHUNK_PAUSE = 0.001  # seconds the loop gets between chunks to read the other requests
PAGE = Path(__file__).with_name("page.html")
PLURAL = {"prefix": "prefixes", "word": "words"}

COMPLETE_OPTIONS = {"model", "q", "k", "max_edits", "edit_prob", "keyboard", "known_only", "new", "open", "lambda", "beam",
                    "budget", "max_length", "match"}
SCORE_OPTIONS = {"model", "w", "mixture", "lambda", "chars"}


class BadRequest(Exception):
    """A request the server answers with 400 and {"error": message}."""


@dataclass
class Learning:
    """How a server learns from accepted completions (rnnac.inference.live.accept_counts)."""

    increment: float | None = None  # the first accept's; None: ACCEPT_SHARE of the list's total
    decay: float = DEFAULT_DECAY


@dataclass
class Served:
    """One model the server answers for: its completer (its lexicon built in the background),
    what /info says, and what --lexicon, --lexicon-mode and --exclude set for it (`keywords`:
    complete_many's lexicon, exclude and known_only by default)."""

    name: str
    path: str
    completer: Any  # rnnac.inference.completer.Completer
    facts: dict
    keywords: dict = field(default_factory=dict)
    changes: int = 0  # edits and accepts since start
    last_change: str | None = None  # when the last one was made (UTC, ISO 8601)

    @classmethod
    def load(cls, name: str, path: str) -> Served:
        from rnnac.inference.completer import Completer
        from rnnac.storage.checkpoint import describe

        completer = Completer.load(path)
        completer.lexicons.build_in_background()  # its first requests search parts of the list meanwhile
        facts = {key: value for key, value in describe(path, verify_lexicon=False).items() if key != "config"}
        facts["file_bytes"] = os.path.getsize(facts["path"])
        return cls(name, path, completer, facts)

    def lexicon_facts(self) -> dict:
        """What /info says of the model's word list now."""
        lexicons = self.completer.lexicons
        stored = lexicons.stored
        words = len(stored.words) if stored is not None else lexicons.built.n_words if lexicons.built is not None else None
        given = self.keywords.get("lexicon")
        return {"lexicon_words": len(given.written) if given is not None else words,
                "journal_edits": self.completer.journal_edits + self.changes, "changes": self.changes,
                "last_change": self.last_change}

    def changed(self, n: int) -> None:
        self.changes += n
        self.last_change = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Options:
    """How to complete: complete_many's keywords, hashable, so equal requests share a batch."""

    model: str
    k: int = 5
    max_edits: int = 0
    edit_prob: tuple[str, ...] = ()
    keyboard: str = "qwerty"
    known_only: bool = False
    new: int | None = None  # invented strings in a top k at most (Completer.default_new)
    open: bool = False
    mixture_lambda: float | None = None
    beam: int | None = None
    budget: int = 2000
    max_length: int | None = None  # the model's lexicon's longest word (Completer.max_length)
    match: str = "prefix"  # or "word-start" (rnnac.inference.wordstarts)

    @property
    def chunk(self) -> int:
        """Prefixes searched at a time in a big batch."""
        return TYPO_CHUNK if self.max_edits else CHUNK

    def keywords(self, completer, served: dict | None = None) -> dict:
        """complete_many's keyword arguments, checked, over the model's own (`served`: Served.keywords);
        BadRequest for a combination it refuses."""
        from rnnac.inference.options import check_options
        from rnnac.inference.typos import Channel

        served = served or {}
        # not asked: the model's default (only the words of a --lexicon FILE it serves), else the
        # mixture with its lexicon, else the model alone
        known_only = self.known_only or served.get("known_only") or None
        has_lexicon = completer.has_lexicon or served.get("lexicon") is not None
        with _bad_options(self.model):
            check_options(known_only, self.open, self.beam, self.max_edits, has_lexicon, self.match)
        try:
            channel = Channel.parse(self.edit_prob, self.keyboard)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        return {"k": self.k, "max_length": self.max_length, "budget": self.budget, "beam": self.beam, "open": self.open,
                "known_only": known_only, "mixture_lambda": self.mixture_lambda, "max_edits": self.max_edits, "channel": channel,
                "new": self.new, "match": self.match, "lexicon": served.get("lexicon"), "exclude": served.get("exclude")}


@contextlib.contextmanager
def _bad_options(model: str):
    """An OptionError (rnnac.inference.options) as a BadRequest, naming the options as parameters."""
    from rnnac.inference.options import OptionError

    try:
        yield
    except OptionError as e:
        raise BadRequest(e.spelled(str, f"model {model!r}")) from None


class Batcher:
    """Answers completions in batches: the requests that arrive while a search runs wait for it,
    then go together (module docstring).

    Searches run on the event loop's own thread. A request schedules a drain with call_soon, which
    runs after the handlers already ready in the same turn of the loop: those that arrived
    together enqueue first and share the search, and a lone request waits for nothing. While a
    search runs the loop reads no sockets; requests arriving meanwhile wait in the kernel's
    buffers and make the next batch. A batch of more than CHUNK prefixes (TYPO_CHUNK with
    typos: a big POST) is searched a chunk at a time, the loop reading the other requests
    between chunks and answering them first, so that one client's big batch does not stall
    everyone's keystrokes.
    """

    def __init__(self, models: dict[str, Served]):
        self.models = models
        self.waiting: dict[Options, list[tuple[list[str], asyncio.Future]]] = {}
        self.requests = self.searches = 0  # answered so far, for /info

    async def complete(self, options: Options, prefixes: list[str]) -> list:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self.waiting:
            loop.call_soon(self._drain)
        self.waiting.setdefault(options, []).append((prefixes, future))
        return await future

    def _drain(self) -> None:
        batches, self.waiting = self.waiting, {}
        for options, requests in batches.items():
            prefixes = [p for batch, _ in requests for p in batch]
            self.requests += len(requests)
            if len(prefixes) > options.chunk:  # a big batch goes in chunks, letting other requests in between
                asyncio.get_running_loop().create_task(self._answer_in_chunks(options, requests))
                continue
            try:
                results = self._complete(options, prefixes)
            except Exception as e:  # a BadRequest, or a fault: every request of the batch hears of it
                _fail(requests, e)
                continue
            _answer(requests, results)

    async def _answer_in_chunks(self, options: Options, requests) -> None:
        """Search a big batch a chunk at a time: its smallest requests first, each answered as
        soon as its prefixes are; between chunks the loop serves others. Stops if every client
        of the batch has gone."""
        requests = sorted(requests, key=lambda request: len(request[0]))  # a keystroke beside a big POST goes first
        prefixes = [p for batch, _ in requests for p in batch]
        ends = list(itertools.accumulate(len(batch) for batch, _ in requests))  # where each request's prefixes end
        results, answered = [], 0
        try:
            completer = self.models[options.model].completer.pinned()  # every chunk searches the list of the first
        except Exception as e:
            _fail(requests, e)
            return
        for start in range(0, len(prefixes), options.chunk):
            if start:
                await asyncio.sleep(CHUNK_PAUSE)  # the loop reads the sockets; their requests go first
                if all(future.done() for _, future in requests):
                    return
            try:
                results += self._complete(options, prefixes[start : start + options.chunk], completer)
            except Exception as e:
                _fail(requests, e)
                return
            answered = _answer_ready(requests[answered:], ends[answered:], results, answered)

    def _complete(self, options: Options, prefixes: list[str], completer=None):
        self.searches += 1
        served = self.models[options.model]
        completer = completer or served.completer
        return completer.complete_many(prefixes, **options.keywords(completer, served.keywords))


def _answer(requests, results: list) -> None:
    """Give each waiting request its share of a batch's results, in order."""
    start = 0
    for batch, future in requests:
        if not future.done():  # its client may have gone
            future.set_result(results[start : start + len(batch)])
        start += len(batch)


def _answer_ready(requests, ends: list[int], results: list, answered: int) -> int:
    """Answer the waiting requests (in order, each ending at its `ends` in the batch) whose
    prefixes all have their results; the number answered so far, `answered` before."""
    for (batch, future), end in zip(requests, ends):
        if end > len(results):
            break
        if not future.done():  # its client may have gone
            future.set_result(results[end - len(batch) : end])
        answered += 1
    return answered


def _fail(requests, error: Exception) -> None:
    for _, future in requests:
        if not future.done():
            future.set_exception(error)


class Api:
    """The routes' handlers (module docstring), over the served models; the first is the default.
    `learning`: how /accept learns (None: it refuses); `admin_token`: what POST /lexicon needs
    (None: it refuses)."""

    def __init__(self, models: dict[str, Served], learning: Learning | None = None, admin_token: str | None = None):
        self.models, self.default = models, next(iter(models))
        self.batcher = Batcher(models)
        self.learning, self.admin_token = learning, admin_token

    def model_of(self, params: dict) -> str:
        name = params.get("model", self.default)
        if not isinstance(name, str) or name not in self.models:
            raise BadRequest(f"unknown model {str(name)[:40]!r}; this server has {', '.join(map(repr, self.models))}")
        return name

    async def complete_get(self, request: Request) -> Response:
        params = _query(request, COMPLETE_OPTIONS)
        if "q" not in params:
            raise BadRequest("give the prefix: /complete?q=...")
        (prefix,) = _texts([params["q"]], "prefix")
        (result,) = await self.batcher.complete(_options(params, self.model_of(params)), [prefix])
        return _json(completion_record(result))

    async def complete_post(self, request: Request) -> Response:
        body = await _body(request)
        unknown = set(body) - (COMPLETE_OPTIONS - {"q"}) - {"prefixes"}
        if unknown:
            raise BadRequest(f"unknown option {sorted(unknown)[0]!r}")
        if not isinstance(body.get("prefixes"), list):
            raise BadRequest('give the prefixes: {"prefixes": ["rec", ...]}')
        prefixes = _texts(body["prefixes"], "prefix")
        options = _options(body, self.model_of(body))
        results = await self.batcher.complete(options, prefixes) if prefixes else []
        return _json({"version": 1, "results": [completion_record(r) for r in results]})

    async def score(self, request: Request) -> Response:
        from rnnac.inference.options import check_score_options
        from rnnac.inference.score import score_words

        params = _query(request, SCORE_OPTIONS)
        words = _texts(request.query_params.getlist("w"), "word")
        if not words:
            raise BadRequest("give a word: /score?w=...")
        served = self.models[self.model_of(params)]
        mixture, per_char = _flag(params, "mixture"), _flag(params, "chars")
        mixture_lambda = _number(params, "lambda", float, 0.0, 1.0, upper_open=True)
        with _bad_options(served.name):
            check_score_options(mixture, mixture_lambda, served.completer.has_lexicon, served.completer.mixture_lambda)
        lexicon = served.completer.lexicon if mixture else None
        scores = score_words(served.completer, words, lexicon, mixture_lambda)  # on the loop's thread, as searches are
        records = [score_record(s, per_char) for s in scores]
        return _json(records[0] if len(records) == 1 else {"version": 1, "results": records})

    async def accept(self, request: Request) -> Response:
        from rnnac.inference.live import accept

        if self.learning is None:
            return _json({"error": "this server does not learn from accepted completions: start it with --learn"}, 403)
        body = await _body(request)
        unknown = set(body) - {"word", "prefix", "model"}
        if unknown:
            raise BadRequest(f"unknown option {sorted(unknown)[0]!r}")
        word, prefix = _texts([body.get("word"), body.get("prefix", "")], "word")
        if not word:
            raise BadRequest('give the word accepted: {"word": ..., "prefix": ...}')
        served = self.models[self.model_of(body)]
        (added,) = accept(served.completer, [(word, prefix)], self.learning.increment, self.learning.decay)
        served.changed(1)
        return _json({"version": 1, "model": served.name, "word": word, "added": added, **served.lexicon_facts()})

    async def lexicon(self, request: Request) -> Response:
        import hmac

        from rnnac.inference.live import check_unchanged
        from rnnac.storage.journal import append_edits, journal_path
        from rnnac.storage.lexedit import edit_problem

        given = request.headers.get("authorization", "")
        if self.admin_token is None or not hmac.compare_digest(given.encode(), f"Bearer {self.admin_token}".encode()):
            why = "start the server with --admin-token" if self.admin_token is None else "a wrong or missing token"
            return _json({"error": f"changing the word list needs the admin token ({why})"}, 403)
        body = await _body(request)
        unknown = set(body) - {"edits", "model"}
        if unknown:
            raise BadRequest(f"unknown option {sorted(unknown)[0]!r}")
        edits = body.get("edits")
        if not isinstance(edits, list) or not edits or len(edits) > MAX_BATCH:
            raise BadRequest(f'give the edits, 1 to {MAX_BATCH:,}: {{"edits": [{{"op": "add", "word": ..., "count": ...}}, ...]}}')
        problem = next(filter(None, (edit_problem(e) or (isinstance(e, dict) and e.get("op") in ("accept", "scale")
                                                         and f"op {e['op']} is not for POST /lexicon (accepts: POST /accept)")
                                     for e in edits)), None)
        if problem:
            raise BadRequest(problem)
        served = self.models[self.model_of(body)]
        completer = served.completer
        if completer.journal_sha256 is None or served.keywords.get("lexicon") is not None:
            raise BadRequest(f"model {served.name!r} has no word list of its checkpoint to change")
        check_unchanged(completer)
        edits = [{key: e[key] for key in ("op", "word", "count", "factor") if key in e} for e in edits]
        trial = completer.pinned()
        absent = trial.edit_lexicon(edits)  # checked in memory first: a refused edit writes nothing
        append_edits(journal_path(completer.path), completer.journal_sha256, edits, accepts=completer.accepts)
        completer.lexicons = trial.lexicons
        served.changed(len(edits))
        return _json({"version": 1, "model": served.name, "applied": len(edits), "absent": absent,
                      **served.lexicon_facts()})

    async def info(self, request: Request) -> Response:
        models = {name: {**m.facts, **m.lexicon_facts(), "lexicon_built": m.completer.lexicons.built is not None}
                  for name, m in self.models.items()}
        return _json({"version": 1, "default": self.default, "models": models,
                      "learning": self.learning is not None, "admin": self.admin_token is not None,
                      "limits": {"max_chars": MAX_CHARS, "max_k": MAX_K, "max_batch": MAX_BATCH},
                      "served": {"requests": self.batcher.requests, "searches": self.batcher.searches}})

    async def health(self, request: Request) -> Response:
        return _json({"status": "ok"})

    async def page(self, request: Request) -> Response:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))


def create_app(models: dict[str, Served], learning: Learning | None = None, admin_token: str | None = None) -> Starlette:
    """The ASGI app serving `models` (name -> Served; the first is the default), learning from
    accepts as `learning` says (None: not), its word lists changed by who has `admin_token`."""
    api = Api(models, learning, admin_token)
    routes = [Route("/complete", api.complete_get, methods=["GET"]), Route("/complete", api.complete_post, methods=["POST"]),
              Route("/accept", api.accept, methods=["POST"]), Route("/lexicon", api.lexicon, methods=["POST"]),
              Route("/score", api.score, methods=["GET"]), Route("/info", api.info, methods=["GET"]),
              Route("/health", api.health, methods=["GET"]), Route("/", api.page, methods=["GET"])]
    handlers = {BadRequest: _bad_request, HTTPException: _http_error, RnnacError: _bad_request}
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.api = api
    return app


def _query(request: Request, allowed: set[str]) -> dict:
    """The query's parameters, each once (repeated: the last), edit_prob as the list of all of
    them (w is read apart); BadRequest for unknown ones."""
    for key in request.query_params:
        if key not in allowed:
            raise BadRequest(f"unknown option {key!r}")
    params = dict(request.query_params)
    if "edit_prob" in params:
        params["edit_prob"] = request.query_params.getlist("edit_prob")
    return params


async def _body(request: Request) -> dict:
    """A POST's JSON object, at most MAX_BODY bytes."""
    size = request.headers.get("content-length")
    if size is not None and (not size.isdigit() or int(size) > MAX_BODY):
        raise BadRequest(f"the body is over {MAX_BODY // 2**20} MiB")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_BODY:
            raise BadRequest(f"the body is over {MAX_BODY // 2**20} MiB")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadRequest(f"malformed JSON: {e}") from None
    except RecursionError:  # [[[[...]]]] deeper than the parser's recursion allows; a request nests 3 deep
        raise BadRequest("malformed JSON: nested too deep") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _texts(values: list, what: str) -> list[str]:
    if len(values) > MAX_BATCH:
        raise BadRequest(f"{len(values):,} {PLURAL[what]} in one request, more than {MAX_BATCH:,}")
    for value in values:
        if not isinstance(value, str):
            raise BadRequest(f"each {what} must be a string, got {json.dumps(value)[:40]}")
        if len(value) > MAX_CHARS:
            raise BadRequest(f"a {what} of {len(value):,} characters, more than {MAX_CHARS:,}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, which JSON can carry as \ud800
            raise BadRequest(f"a {what} that is not valid Unicode: {json.dumps(value)[:40]}") from None
    return [v.strip() for v in values]


def _options(params: dict, model: str) -> Options:
    """The completion options of a query (strings) or a JSON body (typed values)."""
    edit_prob = params.get("edit_prob", ())
    edit_prob = (edit_prob,) if isinstance(edit_prob, (str, int, float)) else edit_prob
    if not isinstance(edit_prob, (list, tuple)) or not all(isinstance(p, (str, int, float)) for p in edit_prob):
        raise BadRequest("edit_prob must be a probability, KIND=P, or a list of them")
    keyboard = params.get("keyboard", "qwerty")
    if keyboard not in ("qwerty", "none"):
        raise BadRequest(f"keyboard must be qwerty or none, got {str(keyboard)[:20]!r}")
    match = params.get("match", "prefix")
    if match not in MATCHES:
        raise BadRequest(f"match must be {' or '.join(MATCHES)}, got {str(match)[:20]!r}")
    return Options(model, k=_number(params, "k", int, 1, MAX_K, default=5),
                   max_edits=_number(params, "max_edits", int, 0, 3, default=0), edit_prob=tuple(map(str, edit_prob)),
                   keyboard=keyboard, known_only=_flag(params, "known_only"), open=_flag(params, "open"),
                   mixture_lambda=_number(params, "lambda", float, 0.0, 1.0), beam=_number(params, "beam", int, 1, MAX_K),
                   budget=_number(params, "budget", int, 1, MAX_BUDGET, default=2000),
                   max_length=_number(params, "max_length", int, 1, MAX_LENGTH), new=_number(params, "new", int, 0, MAX_K),
                   match=match)


def _number(params: dict, name: str, kind: type, low, high, default=None, upper_open: bool = False):
    """params[name] as an int or float in [low, high] (or [low, high)), else default; BadRequest otherwise."""
    value = params.get(name)
    if value is None or value == "":
        return default
    number = _parse_number(value, name, kind)
    if not (low <= number <= high) or (upper_open and number == high) or (kind is float and not math.isfinite(number)):
        raise BadRequest(f"{name} must be in [{low}, {high}{')' if upper_open else ']'}, got {number}")
    return number


def _parse_number(value, name: str, kind: type):
    """A query's string or a JSON number as `kind` (int or float); BadRequest for a bool, a number
    with a fraction where an integer is wanted, or anything that is not a number."""
    try:
        if isinstance(value, bool) or (kind is int and isinstance(value, float) and not value.is_integer()):
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be {'an integer' if kind is int else 'a number'}, got {str(value)[:20]!r}") from None


def _flag(params: dict, name: str) -> bool:
    """A yes/no option: true, 1, yes or given empty (?open); false, 0 or no; off when absent."""
    if name not in params:
        return False
    value = params[name]
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("", "1", "true", "yes"):
        return True
    if text in ("0", "false", "no"):
        return False
    raise BadRequest(f"{name} must be true or false, got {str(value)[:20]!r}")


def _json(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(obj, ensure_ascii=False), status_code=status, media_type="application/json")


async def _bad_request(request: Request, exc: Exception) -> Response:
    return _json({"error": str(exc)}, 400)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    return _json({"error": exc.detail}, exc.status_code)


@dataclass
class Listener:
    """A bound listening socket and where it is."""

    socket: Any
    host: str
    port: int


def bind(host: str, port: int) -> Listener:
    """A listening TCP socket on host:port (port 0: any free one); OSError if it cannot be had."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, so asyncio sets TCP_NODELAY on each connection (module docstring)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return Listener(sock, host, sock.getsockname()[1])


def serve(models: dict[str, Served], listener: Listener, announce: Callable[[str], None],
          learning: Learning | None = None, admin_token: str | None = None) -> int | None:
    """Serve until SIGINT or SIGTERM, which let the requests in flight finish; the signal that
    stopped it (None if none did)."""
    import signal
    import threading

    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, but one that returns after a signal's graceful stop instead of
        raising the signal again (which would end the process by it): `rnnac serve` exits 0."""

        stopped_by: int | None = None

        def handle_exit(self, sig, frame):
            self.stopped_by = self.stopped_by or sig
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    config = uvicorn.Config(create_app(models, learning, admin_token), log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=30)
    server = Server(config)
    host = f"[{listener.host}]" if ":" in listener.host else listener.host
    announce(f"Serving {', '.join(models)} on http://{host}:{listener.port}/ (Ctrl-C or SIGTERM to stop)")
    server.run(sockets=[listener.socket])
    return server.stopped_by
