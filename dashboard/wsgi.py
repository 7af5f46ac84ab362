"""The WSGI entry point (gunicorn ``dashboard.wsgi:application``)."""
import os

from django.core.wsgi import get_wsgi_application

from dashboard.localstate import prepare

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
prepare()
application = get_wsgi_application()
