"""`python -m dev.blob_client`: build the console's Blob client bundle and print its path."""

import logging

from dev.blob_client import build

logging.basicConfig(level=logging.INFO)
print(build() or "not built (see the warning above)")
