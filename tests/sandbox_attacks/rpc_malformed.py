# expect: failed malformed

"""Write garbage onto the RPC pipe."""
import os

import jan.sdk.assistant as sdk
from jan.sdk.assistant import assistant, events


@events.on(f"assistant:{assistant.id}")
def attack(event):
    os.write(sdk._transport.wfd, b"{this is not json\n")
    import time
    time.sleep(5)
    return "LEAK the host accepted garbage"
