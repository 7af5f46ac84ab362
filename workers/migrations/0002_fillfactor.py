"""Leave free space in hybrid worker pages (PostgreSQL only).

Every poll rewrites each worker row (lastSeen, heartbeat, utilization, deadline). With free space on
the page, PostgreSQL can do these as HOT updates (no index writes when no indexed column changes),
which keeps a 10,000-worker poll cycle cheap and the table from bloating. SQLite has no such knob.
"""
from django.db import migrations


def set_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE workers_hybridworker SET (fillfactor = 50)")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE workers_hybridworker RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("workers", "0001_initial")]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]
