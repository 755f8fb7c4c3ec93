from tests.factories import demo_institution


def test_demo_fixture_has_two_peer_classes(ctx):
    first, second = demo_institution("rmyy"), demo_institution("zyy")
    assert first.peer_class != second.peer_class


def test_healthz_reports_database_and_redis(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["database"] == "ok"
    assert body["redis"] == "ok"
