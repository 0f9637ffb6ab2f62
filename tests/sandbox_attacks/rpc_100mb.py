# expect: failed larger than

"""Send the host one 100 MB RPC message, straight onto the RPC pipe."""
import os

import jan.sdk.assistant as sdk
from jan.sdk.assistant import assistant, events


@events.on(f"assistant:{assistant.id}")
def attack(event):
    fd = sdk._transport.wfd
    head = b'{"jsonrpc":"2.0","id":1,"method":"events.emit","params":{"topic":"x","data":"'
    chunk = b"A" * (1 << 20)
    os.write(fd, head)
    for _ in range(100):
        os.write(fd, chunk)
    os.write(fd, b'"}}\n')
    return "LEAK the host swallowed 100 MB"
