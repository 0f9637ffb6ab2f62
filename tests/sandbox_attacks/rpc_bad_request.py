# expect: failed malformed

"""Valid JSON that is not a valid request: unknown method, negative id, extra fields."""
import json
import os
import time

import jan.sdk.assistant as sdk
from jan.sdk.assistant import assistant, events


@events.on(f"assistant:{assistant.id}")
def attack(event):
    msg = {"jsonrpc": "2.0", "id": -1, "method": "os.system", "params": {"cmd": "id"},
           "__class__": "pickle"}
    os.write(sdk._transport.wfd, (json.dumps(msg) + "\n").encode())
    time.sleep(5)
    return "LEAK the host accepted an invalid request"
