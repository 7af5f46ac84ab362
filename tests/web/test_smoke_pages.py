import pytest


@pytest.mark.django_db
def test_it_renders_every_page(client_in, small_fleet):
    g = small_fleet.groups[0]
    w = small_fleet.workers[0]
    for url in ["/", f"/groups/{g.pk}/", f"/workers/{w.pk}/", f"/workers/{w.pk}/?window=7d", "/jobs/", "/jobs/?since=24h&status=failed",
                "/api/v1/groups", f"/api/v1/workers?group={g.name}", "/api/v1/jobs?since=7d&page_size=2", "/metrics"]:
        r = client_in.get(url)
        assert r.status_code == 200, (url, r.status_code, r.content[:500])
