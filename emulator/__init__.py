"""A local emulator of the Tencent Cloud GME recording API, for tests, the local runner and bench.

It speaks the real wire protocol (API 3.0, TC3-HMAC-SHA256, version 2018-07-11) so the official
SDK runs unmodified against it, and it can misbehave on request (errors, lost responses, delays,
a wrong Content-Type) so the code under test meets those cases before production does.
Standard library only; it is not shipped in the Lambda package.
"""

from emulator.server import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, GmeEmulator
from emulator.signing import API_VERSION, sign_request
from emulator.state import Call, Task

__all__ = [
    "API_VERSION",
    "DEFAULT_SECRET_ID",
    "DEFAULT_SECRET_KEY",
    "Call",
    "GmeEmulator",
    "Task",
    "sign_request",
]
