"""Run django-scim2 on loopback: ``python tests/scim_peers/django_peer/serve.py PORT DB_FILE``.

The schema is created in the sqlite file first; requests are served by a threaded WSGI server.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main(port: int, db_file: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ["SCIM_PEER_DB"] = db_file
    os.environ["DJANGO_SETTINGS_MODULE"] = "scimpeer.settings"
    import django
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    django.setup()
    call_command("migrate", run_syncdb=True, verbosity=0)
    application = get_wsgi_application()
    with make_server(
        "127.0.0.1", port, application, server_class=ThreadingWSGIServer, handler_class=QuietHandler
    ) as server:
        print(f"django-scim2 on http://127.0.0.1:{port}/scim/v2", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
