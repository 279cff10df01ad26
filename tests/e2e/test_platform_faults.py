"""The connector's other neighbours failing: RabbitMQ restarted, OpenCTI's API down during the run.

pycti acknowledges a message before processing it, so a message in progress when the broker goes
away is not redelivered; messages still queued survive a restart (the queues are durable).
"""

import time

from .test_connector import C2_DOMAIN, C2_IP, TYPES, start_slow_enrichment


def publish(fake, connector_id: str, value: str) -> str:
    return fake.publish_enrichment(connector_id, fake.add_entity(TYPES[value], value))


def test_the_connector_reconnects_by_itself_after_a_broker_restart(
    rabbitmq, start_connector, connector_env, fake_opencti
):
    process = start_connector(connector_env)
    process.wait_registered(fake_opencti)
    before = fake_opencti.wait_work_processed(publish(fake_opencti, connector_env["CONNECTOR_ID"], C2_DOMAIN))
    assert before["in_error"] is False
    rabbitmq.restart()
    queued = publish(fake_opencti, connector_env["CONNECTOR_ID"], C2_IP)  # waits in the durable queue
    work = fake_opencti.wait_work_processed(queued, timeout=60)  # pycti retries its connection every 10 s
    assert work["in_error"] is False and "6 records" in work["message"]
    assert process.running


def test_opencti_api_down_during_a_run_loses_only_what_arrives_meanwhile(start_connector, connector_env, fake_opencti):
    """With the platform's API down, a message cannot even be read (pycti has acknowledged it: it is
    lost, and its work cannot be reported); the connector stays up and serves the next one."""
    process = start_connector(connector_env)
    process.wait_registered(fake_opencti)
    fake_opencti.down = True
    lost = publish(fake_opencti, connector_env["CONNECTOR_ID"], C2_DOMAIN)
    deadline = time.monotonic() + 20
    while fake_opencti.queue_state(f"listen_{connector_env['CONNECTOR_ID']}")[0] and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)  # the read attempt fails meanwhile
    fake_opencti.down = False
    work = fake_opencti.wait_work_processed(publish(fake_opencti, connector_env["CONNECTOR_ID"], C2_IP))
    assert work["in_error"] is False and "6 records" in work["message"]
    assert fake_opencti.works[lost]["processed"] is False
    assert process.running


def test_a_broker_restart_while_processing_ends_that_work_once_and_the_next_one_is_served(
    rabbitmq, start_connector, connector_env, fake_opencti, simulator
):
    """The message in progress was acknowledged: its work is reported once (in error when its bundle could not
    be sent), never redelivered; the connector reconnects and serves the next message."""
    process = start_connector(connector_env)
    process.wait_registered(fake_opencti)
    in_progress = start_slow_enrichment(fake_opencti, connector_env["CONNECTOR_ID"], simulator, seconds=2.0)
    rabbitmq.restart()
    work = fake_opencti.wait_work_processed(in_progress, timeout=60)
    after = fake_opencti.wait_work_processed(publish(fake_opencti, connector_env["CONNECTOR_ID"], C2_IP), timeout=60)
    assert after["in_error"] is False and "6 records" in after["message"]
    reports = [c for c in fake_opencti.calls_for("workEdit", "toProcessed") if c.variables["id"] == in_progress]
    assert len(reports) == 1, work
    assert process.running
