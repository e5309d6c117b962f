#!/usr/bin/python3
"""An independent Modbus peer for the integration tests, built on pymodbus (Debian
python3-pymodbus 3.0.0; run it with /usr/bin/python3).

pymodbus does the protocol work: its framers (ModbusSocketFramer for TCP,
ModbusRtuFramer for RTU) split and check frames, its ServerDecoder decodes the request
PDUs and the requests execute against its datastore (ModbusSlaveContext, zero-based).
Only the transport is our own asyncio code: `pymodbus.server` imports pyserial at import
time, which Debian does not pull in with python3-pymodbus, and owning the transport also
lets one unit be muted (its requests are dropped unanswered, so the client times out)
while the other units on the same connection keep answering.

    /usr/bin/python3 pymodbus_server.py --port 5020 --units 1,2 [--rtu /dev/pts/N --baud 19200]

Control: one JSON object per line on stdin, one JSON answer per line on stdout:
    {"id": 1, "op": "set", "unit": 1, "area": "holding", "address": 0, "values": [1, 2]}
    {"id": 2, "op": "get", "unit": 1, "area": "coil", "address": 0, "count": 4}
    {"id": 3, "op": "mute", "unit": 2}      / "unmute"
    {"id": 4, "op": "requests"}             requests seen since the last call: [[unit, fc, address], ...]
    {"id": 5, "op": "encode", "type": "float32", "order": "CDAB", "value": 25.5, "count": 0}
              words by struct + explicit byte permutation, and by pymodbus' BinaryPayloadBuilder
The first line printed is {"event": "ready", "port": <tcp port>, "rtu": <path or null>}.
The process exits when stdin closes.
"""
import argparse
import asyncio
import json
import logging
import os
import struct
import sys
import termios
import tty

from pymodbus.constants import Endian
from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.factory import ServerDecoder
from pymodbus.payload import BinaryPayloadBuilder
from pymodbus.transaction import ModbusRtuFramer, ModbusSocketFramer

AREA_FC = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}

muted = set()
seen = []  # (unit, function code, address) of every request answered or dropped


def make_context(units, size):
    slaves = {
        u: ModbusSlaveContext(
            di=ModbusSequentialDataBlock(0, [0] * size),
            co=ModbusSequentialDataBlock(0, [0] * size),
            hr=ModbusSequentialDataBlock(0, [0] * size),
            ir=ModbusSequentialDataBlock(0, [0] * size),
            zero_mode=True,  # protocol address 0 is block index 0
        )
        for u in units
    }
    return ModbusServerContext(slaves=slaves, single=False)


def answer(context, request, framer):
    """Executes a decoded request; returns the response frame, or None to stay silent."""
    unit = request.unit_id
    seen.append([unit, request.function_code, getattr(request, "address", None)])
    if unit in muted:
        return None
    try:
        response = request.execute(context[unit])
    except Exception:  # noqa: BLE001 - unknown unit: a real device on the line would not answer
        return None
    response.transaction_id = request.transaction_id
    response.unit_id = unit
    return framer.buildPacket(response)


class TcpProtocol(asyncio.Protocol):
    def __init__(self, context, units):
        self.context = context
        self.units = units
        self.framer = ModbusSocketFramer(ServerDecoder(), client=None)
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        def on_request(request):
            frame = answer(self.context, request, self.framer)
            if frame is not None and self.transport is not None:
                self.transport.write(frame)

        try:
            self.framer.processIncomingPacket(data=data, callback=on_request, unit=self.units, single=False)
        except Exception as exc:  # noqa: BLE001
            print(json.dumps({"event": "error", "message": f"tcp frame: {exc}"}), file=sys.stderr, flush=True)
            self.framer.resetFrame()

    def connection_lost(self, exc):
        self.transport = None


def serve_rtu(loop, path, baud, context, units):
    """RTU slave on a serial device (a pty from socat): raw, non-blocking, pymodbus RTU framing."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    speed = getattr(termios, f"B{baud}", termios.B9600)
    attrs[4] = attrs[5] = speed
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    framer = ModbusRtuFramer(ServerDecoder(), client=None)

    def on_request(request):
        frame = answer(context, request, framer)
        if frame is not None:
            os.write(fd, frame)

    def readable():
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            print(json.dumps({"event": "error", "message": f"rtu read: {exc}"}), file=sys.stderr, flush=True)
            loop.remove_reader(fd)
            return
        if not data:
            return
        try:
            framer.processIncomingPacket(data=data, callback=on_request, unit=units, single=False)
        except Exception as exc:  # noqa: BLE001
            print(json.dumps({"event": "error", "message": f"rtu frame: {exc}"}), file=sys.stderr, flush=True)
            framer.resetFrame()

    loop.add_reader(fd, readable)
    return fd


# ---- independent encoding ------------------------------------------------------

STRUCT = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "float32": "f",
          "int64": "q", "uint64": "Q", "float64": "d"}


def permute(be, order):
    """Big-endian bytes A B C D (E F G H) → bytes on the wire for an order name."""
    words = [be[i:i + 2] for i in range(0, len(be), 2)]
    if order in ("CDAB", "DCBA"):
        words.reverse()  # word order little-endian: the last word first
    if order in ("BADC", "DCBA"):
        words = [w[::-1] for w in words]  # byte order little-endian inside each word
    return b"".join(words)


def to_words(raw):
    return [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]


def encode(typ, order, value, count):
    if typ == "string":
        raw = value.encode("latin-1").ljust(count * 2, b"\0")
        if len(raw) != count * 2:
            raise ValueError("string does not fit")
        # Characters keep their order; BADC/DCBA swap the two bytes of each register.
        if order in ("BADC", "DCBA"):
            raw = b"".join(raw[i:i + 2][::-1] for i in range(0, len(raw), 2))
        return {"words": to_words(raw)}
    fmt = STRUCT[typ]
    be = struct.pack(">" + fmt, value)
    if len(be) == 2:
        return {"words": to_words(be)}  # one register: the order does not apply
    words = to_words(permute(be, order))
    byteorder = Endian.Little if order in ("BADC", "DCBA") else Endian.Big
    wordorder = Endian.Little if order in ("CDAB", "DCBA") else Endian.Big
    builder = BinaryPayloadBuilder(byteorder=byteorder, wordorder=wordorder)
    add = {"int32": builder.add_32bit_int, "uint32": builder.add_32bit_uint, "float32": builder.add_32bit_float,
           "int64": builder.add_64bit_int, "uint64": builder.add_64bit_uint, "float64": builder.add_64bit_float}[typ]
    add(value)
    return {"words": words, "pymodbus_words": builder.to_registers()}


# ---- control -----------------------------------------------------------------------

def handle(context, msg):
    op = msg.get("op")
    if op == "set":
        values = msg["values"]
        if msg["area"] in ("coil", "discrete"):
            values = [bool(v) for v in values]
        context[msg["unit"]].setValues(AREA_FC[msg["area"]], msg["address"], values)
        return {}
    if op == "get":
        values = context[msg["unit"]].getValues(AREA_FC[msg["area"]], msg["address"], msg.get("count", 1))
        return {"values": [int(v) for v in values]}
    if op == "mute":
        muted.add(msg["unit"])
        return {}
    if op == "unmute":
        muted.discard(msg["unit"])
        return {}
    if op == "requests":
        out = list(seen)
        seen.clear()
        return {"requests": out}
    if op == "encode":
        return encode(msg["type"], msg.get("order", "ABCD"), msg["value"], msg.get("count", 0))
    raise ValueError(f"unknown op {op!r}")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 = no TCP server")
    parser.add_argument("--units", default="1")
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--rtu", help="serial device for an RTU slave")
    parser.add_argument("--baud", type=int, default=19200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)

    units = [int(u) for u in args.units.split(",")]
    context = make_context(units, args.size)
    loop = asyncio.get_running_loop()

    server = None
    if args.port:
        server = await loop.create_server(lambda: TcpProtocol(context, units), args.host, args.port, reuse_address=True)
    if args.rtu:
        serve_rtu(loop, args.rtu, args.baud, context, units)

    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"event": "ready", "port": args.port or None, "rtu": args.rtu, "pymodbus": __import__("pymodbus").__version__}), flush=True)

    while True:
        line = await reader.readline()
        if not line:
            break  # the test process went away
        line = line.strip()
        if not line:
            continue
        msg = {}
        try:
            msg = json.loads(line)
            reply = {"id": msg.get("id"), "ok": True, **handle(context, msg)}
        except Exception as exc:  # noqa: BLE001
            reply = {"id": msg.get("id"), "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)
    if server is not None:
        server.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
