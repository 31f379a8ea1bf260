"""A multipart upload writes down its object before storing it: one whose request dies between
storing and recording the photo still leaves nothing that deletion and the cron cannot find."""

import threading
import time

from tests.helpers import jpeg

CRON_SECRET = "cron-secret-for-tests-0123456789"


def kill_connections_while_storing(db, user) -> threading.Thread:
    """Once the upload has written down its object (and is storing it), terminate every
    connection to the suite's database but `db`'s own."""

    def kill() -> None:
        deadline = time.monotonic() + 20
        while (
            time.monotonic() < deadline
            and not db.execute(
                "SELECT 1 FROM pending_uploads WHERE user_id = %s", (user.id,)
            ).fetchall()
        ):
            time.sleep(0.01)
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )

    killer = threading.Thread(target=kill)
    killer.start()
    return killer


def test_a_photo_stored_but_never_recorded_is_deleted_by_the_cron(api, user, stack, db, configure):
    stack.blob.latency = 0.5  # the object is being stored when the connection dies
    try:
        killer = kill_connections_while_storing(db, user)
        files = [("files", ("selfie.jpg", jpeg(41), "image/jpeg"))]
        response = api.post("/api/training/upload", files=files, headers=user.headers)
        killer.join()
    finally:
        stack.blob.latency = 0.0
    [pending] = db.execute(
        "SELECT id, pathname FROM pending_uploads WHERE user_id = %s", (user.id,)
    ).fetchall()
    recorded = db.execute("SELECT 1 FROM selfie_uploads WHERE user_id = %s", (user.id,)).fetchall()
    stored_before = pending["pathname"] in stack.blob.objects()
    db.execute(
        "UPDATE pending_uploads SET expires_at = now() - interval '2 hours' WHERE id = %s",
        (pending["id"],),
    )
    configure(CRON_SECRET=CRON_SECRET)

    cron = api.get("/api/cron/reconcile", headers={"Authorization": f"Bearer {CRON_SECRET}"})

    assert response.status_code == 503
    assert recorded == [] and stored_before
    assert cron.status_code == 200 and cron.json()["unreportedUploadsDeleted"] == 1
    assert pending["pathname"] not in stack.blob.objects()


def test_a_recorded_photo_leaves_no_pending_row_behind(api, user, db):
    files = [("files", ("selfie.jpg", jpeg(42), "image/jpeg"))]

    response = api.post("/api/training/upload", files=files, headers=user.headers)

    assert response.status_code == 200, response.text
    assert (
        db.execute("SELECT 1 FROM pending_uploads WHERE user_id = %s", (user.id,)).fetchall() == []
    )
