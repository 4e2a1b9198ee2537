"""The probe set: paraphrase pairs shipped with cux to measure quality by.

``providers/data/probe_pairs.tsv`` holds 80 pairs of sentences that say the
same thing in other words, ten pairs on each of eight everyday topics, so that
every sentence has near neighbours on its own topic that are not its
paraphrase; and 50 decoys, sentences that reuse many of one sentence's words to
say something else ("This soup needs less salt."), so that matching words alone
does not find the paraphrase. They were written for cux (see
``providers/data/README.md``).

Quality is measured two ways against the full-depth model:

- the cosine of each sentence's embedding to its full-depth embedding (how
  much of the exact answer a cheaper tier keeps), and
- paraphrase retrieval: recall@1 of each paired sentence's paraphrase among all
  the other 209 sentences of the set (how useful the embedding still is for
  search), both within the tier and against an index built at full depth.

No torch here: the similarity arithmetic is numpy's, on any array of rows.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt

__all__ = [
    "PROBE_PATH",
    "ProbeSet",
    "load_probe_set",
    "mean_cosine",
    "paraphrase_recall_at_1",
]

PROBE_PATH = Path(__file__).resolve().parent / "data" / "probe_pairs.tsv"


class ProbeSet(msgspec.Struct, frozen=True):
    """The probe sentences: the pairs side by side, then the decoys.

    Attributes:
        sentences: the first sentence of every pair, then the second of every
            pair (sentence ``i`` and sentence ``i + pairs`` are paraphrases),
            then the decoys.
        topics: the topic of each pair.
        sha256: the probe file's hash, recorded in the quality profile.
    """

    sentences: tuple[str, ...]
    topics: tuple[str, ...]
    sha256: str

    @property
    def pairs(self) -> int:
        return len(self.topics)

    @property
    def queries(self) -> int:
        """The sentences that have a paraphrase: the first ``2 * pairs``."""
        return 2 * self.pairs

    def partner(self, index: int) -> int:
        """The index of the paraphrase of sentence ``index`` (a query)."""
        if not 0 <= index < self.queries:
            raise IndexError(f"sentence {index} has no paraphrase")
        return (index + self.pairs) % self.queries


def load_probe_set(path: Path = PROBE_PATH) -> ProbeSet:
    """Read the probe (a TSV file: topic, sentence, paraphrase, decoy or empty)."""
    data = path.read_bytes()
    lines = data.decode("utf-8").splitlines()[1:]
    rows = list(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))
    firsts = tuple(row[1] for row in rows)
    seconds = tuple(row[2] for row in rows)
    decoys = tuple(row[3] for row in rows if row[3])
    return ProbeSet(
        sentences=firsts + seconds + decoys,
        topics=tuple(row[0] for row in rows),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def mean_cosine(vectors: npt.ArrayLike, exact: npt.ArrayLike) -> float:
    """Mean cosine of each row of ``vectors`` to the same row of ``exact``."""
    a, b = _unit_rows(vectors), _unit_rows(exact)
    if a.shape != b.shape or not len(a):
        raise ValueError(
            f"need two equal, non-empty sets of rows: {a.shape}, {b.shape}"
        )
    return float(np.mean(np.sum(a * b, axis=1)))


def paraphrase_recall_at_1(
    probe: ProbeSet, vectors: npt.ArrayLike, index: npt.ArrayLike | None = None
) -> float:
    """Share of queries whose nearest other sentence is their paraphrase.

    Args:
        probe: the probe set.
        vectors: one embedding per probe sentence; the queries' are used.
        index: the embeddings searched, one per probe sentence; None searches
            ``vectors`` themselves. Passing the full-depth embeddings asks
            whether queries embedded at a cheaper tier still find their match
            in an index built at full depth.
    """
    queries = _unit_rows(vectors)
    candidates = queries if index is None else _unit_rows(index)
    if len(queries) != len(probe.sentences) or len(candidates) != len(queries):
        raise ValueError(f"need {len(probe.sentences)} vectors, one per sentence")
    similarity = queries[: probe.queries] @ candidates.T
    np.fill_diagonal(similarity, -np.inf)  # a sentence never finds itself
    nearest = np.argmax(similarity, axis=1)
    partners = np.array([probe.partner(i) for i in range(probe.queries)])
    return float(np.mean(nearest == partners))


def _unit_rows(vectors: npt.ArrayLike) -> npt.NDArray[np.float64]:
    rows = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1.0, norms)
