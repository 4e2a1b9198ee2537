"""The node bench is not timed in tests, but it must keep working."""

from bench.node_bench import bucketing_table, mixed_workload, throughput_table
from providers.model import EncoderModel
from providers.probe import load_probe_set


def test_the_node_bench_tables_run_on_a_small_workload(model: EncoderModel) -> None:
    texts = mixed_workload(load_probe_set().sentences[:6], passages=1)

    throughput = throughput_table(model, texts, runs=1)
    bucketing = bucketing_table(model, texts, runs=1)

    assert len(throughput) == 2 + 4  # header, rule, one row a tier
    arrival, bucketed = (line.split("|") for line in bucketing[2:])
    assert arrival[2] == bucketed[2]  # the same CU billed either way
    assert float(arrival[3]) >= float(bucketed[3])  # never more computed
