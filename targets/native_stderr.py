"""Hold back what native toolchain code writes straight to file descriptor 2.

TVM's C++ side prints warnings ("BlockBuilder destroyed with remaining blocks!") after our error
line when an import fails; litert-converter's absl logging prints oneDNN and "log messages before
absl::InitializeLog()" banners on every conversion. Both repeat or add nothing to what the
exception (or the result) says, so a build's output stays ours.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
