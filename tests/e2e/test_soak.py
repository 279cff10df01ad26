"""A short soak: a few hundred enrichments in a row, mixed outcomes; `bench/soak.py` runs the long one."""

from .soak import soak


def test_a_short_soak_finishes_every_work_exactly_once_with_flat_memory(
    start_connector, connector_env, fake_opencti, simulator
):
    process = start_connector({**connector_env, "MALBEACON_CACHE_TTL": "0"})
    process.wait_registered(fake_opencti)
    result = soak(fake_opencti, simulator, connector_env["CONNECTOR_ID"], process.pid, count=300)
    assert result.wrong == []
    assert set(result.outcomes) == {"found", "not found", "refused", "failed"}
    assert result.reports == {1: 300}  # every work reported processed exactly once, none stuck
    assert result.rss_after_all - result.rss_after_first_hundred < 10, result
    assert process.running
