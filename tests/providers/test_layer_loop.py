"""The layer loop: equal to the transformers model, padding and order kept out."""

import torch

from providers.jobs import plan_batches
from providers.model import EncoderModel
from providers.runtime import run_job

TEXTS = [
    "A fox crossed the road.",
    "",
    "The kitchen tap is dripping and needs a new washer, so I called a plumber "
    "who said he could come on Thursday afternoon between two and four.",
    "Snow closed the mountain pass overnight.",
    "ok",
    "Thunder rolled in the distance as dark clouds gathered over the hills.",
]


def test_the_layer_loop_at_full_depth_equals_the_transformers_model(
    model: EncoderModel,
) -> None:
    ours = run_job(model, TEXTS).embeddings
    theirs = model.reference_embed(TEXTS).cpu()

    assert (ours - theirs).abs().max().item() < 1e-5
    assert torch.allclose(ours.norm(dim=1), torch.ones(len(TEXTS)))


def test_an_input_beside_a_long_one_costs_and_embeds_as_it_does_alone(
    model: EncoderModel,
) -> None:
    short, long = TEXTS[0], " ".join(TEXTS) * 4
    alone = run_job(model, [short])
    padded = run_job(model, [short, long], bucketing=False, batch_tokens=10**6)

    assert padded.report.inputs[0] == alone.report.inputs[0]
    assert padded.report.computed_flops > padded.report.flops  # padding was run
    diff = (padded.embeddings[0] - alone.embeddings[0]).abs().max().item()
    assert diff < 1e-5


def test_rows_that_leave_early_do_not_change_the_rows_that_stay(
    model: EncoderModel,
) -> None:
    rows = model.tokenize(TEXTS)
    depths = [0, 6, 2, 5, 1, 3]

    together, _ = model.embed_batch(rows, depths)

    for row, depth, vector in zip(rows, depths, together, strict=True):
        alone, _ = model.embed_batch([row], [depth])
        assert (alone[0] - vector).abs().max().item() < 1e-5


def test_bucketing_batches_by_length_and_returns_embeddings_in_input_order(
    model: EncoderModel,
) -> None:
    texts = TEXTS * 3
    tokens = [len(row) for row in model.tokenize(texts)]
    batches = plan_batches(tokens, batch_tokens=64, max_rows=4)

    bucketed = run_job(model, texts, batch_tokens=64, batch_rows=4)
    arrival = run_job(model, texts, batch_tokens=10**6, bucketing=False)

    assert sorted(i for batch in batches for i in batch) == list(range(len(texts)))
    widths = [max(tokens[i] for i in batch) for batch in batches]
    assert widths == sorted(widths)
    assert [p.tokens for p in bucketed.report.inputs] == tokens
    assert (bucketed.embeddings - arrival.embeddings).abs().max().item() < 1e-5
    assert bucketed.report.inputs == arrival.report.inputs


def test_a_batch_holds_no_more_rows_or_padded_tokens_than_allowed() -> None:
    tokens = [5, 300, 7, 7, 40, 2, 9, 9, 9, 12]

    for bucketing in (True, False):
        batches = plan_batches(tokens, batch_tokens=40, max_rows=3, bucketing=bucketing)

        assert sorted(i for b in batches for i in b) == list(range(len(tokens)))
        for batch in batches:
            width = max(tokens[i] for i in batch)
            assert len(batch) <= 3
            assert len(batch) * width <= 40 or len(batch) == 1
            if bucketing:  # and at most 10% of padding
                assert len(batch) * width <= 1.1 * sum(tokens[i] for i in batch)


def test_arrival_order_batches_keep_the_inputs_in_order() -> None:
    batches = plan_batches([3, 9, 4, 4], batch_tokens=100, max_rows=2, bucketing=False)

    assert batches == [[0, 1], [2, 3]]
