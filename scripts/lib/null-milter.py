"""A milter that takes what mailwarden takes and decides nothing: perf-postfix.sh's
"null" configuration, for what any milter taking the headers and the body costs
Postfix (Postfix's CPU per message; being Python, its own speed bounds msg/s). It negotiates as mailwarden does (no DATA, EOH or UNKNOWN events, no
reply before end-of-message, the same macro lists) and at end-of-message inserts
one header and continues, as mailwarden does with Authentication-Results.
With --empty it asks for no event at all (no connect, HELO, MAIL, RCPT, header
or body event) and changes nothing: only the connection, the negotiation and
end-of-message, the least any milter costs Postfix ("empty" configuration).
    python3 null-milter.py inet:127.0.0.1:PORT|unix:/PATH [--empty]
"""
import asyncio
import os
import socket
import struct
import sys

# Protocol bits (milter protocol 6), as src/milter/flags.rs names them.
NO_CONNECT, NO_HELO, NO_MAIL, NO_RCPT, NO_BODY, NO_HDRS = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20
NO_EOH, NR_HEADER, NO_UNKNOWN, NO_DATA = 0x40, 0x80, 0x100, 0x200
NR_CONNECT, NR_HELO, NR_MAIL, NR_RCPT = 0x1000, 0x2000, 0x4000, 0x8000
NR_DATA, NR_UNKNOWN, NR_EOH, NR_BODY = 0x10000, 0x20000, 0x40000, 0x80000
HEADER_LEADING_SPACE = 0x100000
WANT = (NO_EOH | NR_HEADER | NO_UNKNOWN | NO_DATA | NR_CONNECT | NR_HELO | NR_MAIL
        | NR_RCPT | NR_DATA | NR_UNKNOWN | NR_EOH | NR_BODY | HEADER_LEADING_SPACE)
EMPTY = "--empty" in sys.argv[2:]
if EMPTY:
    WANT = NO_CONNECT | NO_HELO | NO_MAIL | NO_RCPT | NO_BODY | NO_HDRS | NO_EOH | NO_UNKNOWN | NO_DATA
ADD_HEADERS, SET_SYMBOL_LIST = 0x1, 0x100
# src/milter/negotiate.rs's MACRO_LISTS: (stage, names).
MACROS = [(0, "{daemon_port}"), (1, " "), (2, "{auth_authen}"), (3, " "),
          (4, " "), (6, " "), (5, "i")]
if EMPTY:
    MACROS = [(stage, " ") for stage, _ in MACROS]
# The event each command is, and the no-reply bit that spares its answer.
NO_REPLY = {b"C": NR_CONNECT, b"H": NR_HELO, b"M": NR_MAIL, b"R": NR_RCPT,
            b"L": NR_HEADER, b"B": NR_BODY, b"T": NR_DATA, b"N": NR_UNKNOWN}
HEADER = (b"\0\0\0\x01" + b"Authentication-Results\0"
          + b" mx.perf.test; none (the null milter: nothing checked)\0")


def packet(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


async def session(reader, writer):
    protocol = 0
    sock = writer.get_extra_info("socket")
    try:
        while True:
            size = struct.unpack(">I", await reader.readexactly(4))[0]
            body = await reader.readexactly(size)
            # As mailwarden does: Postfix writes each event on its own and we answer
            # none before end-of-message, so delayed ACKs would hold its writes.
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            cmd, data = body[:1], body[1:]
            if cmd == b"O":
                _, actions, offered = struct.unpack(">III", data[:12])
                protocol = WANT & offered
                ours = (0 if EMPTY else ADD_HEADERS) | (actions & SET_SYMBOL_LIST)
                lists = b""
                if actions & SET_SYMBOL_LIST:
                    lists = b"".join(struct.pack(">I", s) + n.encode() + b"\0" for s, n in MACROS)
                writer.write(packet(b"O", struct.pack(">III", 6, ours, protocol) + lists))
            elif cmd == b"E":
                writer.write((b"" if EMPTY else packet(b"i", HEADER)) + packet(b"c"))
            elif cmd == b"Q":
                return
            elif cmd in (b"D", b"A", b"K"):
                continue
            elif not protocol & NO_REPLY.get(cmd, 0):
                writer.write(packet(b"c"))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(addr):
    if addr.startswith("unix:"):
        path = addr[len("unix:"):]
        server = await asyncio.start_unix_server(session, path)
        os.chmod(path, 0o666)
    else:
        host, port = addr.removeprefix("inet:").rsplit(":", 1)
        server = await asyncio.start_server(session, host, int(port))
    async with server:
        await server.serve_forever()


asyncio.run(main(sys.argv[1]))
