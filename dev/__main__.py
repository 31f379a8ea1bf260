"""`make dev`: the local stack on http://127.0.0.1:$PORT (default 8000) until Ctrl-C."""

import logging
import os
import signal
import threading

from dev import blob_client
from dev.stack import start_stack


def main() -> None:
    """Start the stack, say what is real and what is simulated, serve until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    port = int(os.environ.get("PORT", "8000"))
    stack = start_stack(os.environ, port=port, blob_client=blob_client.build())
    print(f"\nSSELFIE backend on {stack.url}  (dev console: {stack.url}/)")
    print(f"OpenAPI document: {stack.url}/openapi.json")
    for part, state in stack.parts.items():
        print(f"  {part:<11} {state}")
    print("Ctrl-C to stop.\n", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stack.close()


if __name__ == "__main__":
    main()
