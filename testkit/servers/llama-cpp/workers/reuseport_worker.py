"""One worker of the llama-cpp-workers kind: llama-cpp-python's app
(llama_cpp.server.app:create_app, settings from the JSON file CONFIG_FILE names)
served by uvicorn on a listening socket of its own, bound to 127.0.0.1:PORT with
SO_REUSEPORT. Several of these share the port; the kernel spreads new
connections over their sockets by a hash of each connection's addresses, so a
burst of connections is split between the workers instead of being taken by
whichever worker wakes first (what one socket shared by `uvicorn --workers`
does: asyncio accepts every pending connection at once).

    python reuseport_worker.py PORT
"""

import socket
import sys

import uvicorn


def main():
    port = int(sys.argv[1])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    config = uvicorn.Config(
        "llama_cpp.server.app:create_app", factory=True, host="127.0.0.1", port=port
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
