import pytest
from django.db import connection


@pytest.mark.django_db
def test_it_migrates_and_queries():
    from workers.models import AutomationAccount

    assert AutomationAccount.objects.count() == 0
    assert connection.vendor in {"sqlite", "postgresql"}
