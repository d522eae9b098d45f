"""Modbus transports and the connection pool: one connection per endpoint, one request at a time.

Three transports:

- ``tcp``: Modbus TCP (MBAP framing);
- ``rtu-over-tcp``: RTU frames (with CRC) carried over a TCP socket, as RS-485 serial gateways
  (USR, Moxa "RTU over TCP" mode, many Chinese DTU boxes) expect;
- ``serial``: RTU over a local serial port (RS-485 adapter), needs pyserial.

Several unit ids behind one gateway, or on one RS-485 line, share one connection. A serial line
and most gateways answer one request at a time, so every connection has an ``asyncio.Lock`` and
requests on it are strictly sequential. The pool is per event loop (a connection belongs to the
loop it was opened on), keyed by the device's endpoint, and reference counted so the last device
to let go closes it.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import Literal

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.framer import FramerType

Function = Literal["holding", "input"]


class DeviceRefused(Exception):
    """The device answered with a Modbus exception response (e.g. illegal data address)."""


@dataclass(frozen=True)
class Endpoint:
    transport: Literal["tcp", "rtu-over-tcp", "serial"]
    host: str | None = None
    port: int = 502
    serial_port: str | None = None
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8
    timeout_s: float = 3.0

    @classmethod
    def of(cls, device) -> Endpoint:
        """The endpoint of a :class:`model.site.DeviceConfig`."""
        return cls(
            transport=device.transport, host=device.host, port=device.port, serial_port=device.serial_port,
            baudrate=device.baudrate, parity=device.parity, stopbits=device.stopbits, bytesize=device.bytesize,
            timeout_s=device.timeout_s,
        )

    @property
    def key(self) -> tuple:
        """Devices with the same key share a connection (timeouts may differ between them)."""
        if self.transport == "serial":
            return ("serial", self.serial_port)
        return (self.transport, self.host, self.port)

    def __str__(self) -> str:
        if self.transport == "serial":
            return f"{self.serial_port} ({self.baudrate} {self.bytesize}{self.parity}{self.stopbits})"
        return f"{self.host}:{self.port}" + (" (RTU over TCP)" if self.transport == "rtu-over-tcp" else "")


def _make_client(ep: Endpoint):
    common = dict(timeout=ep.timeout_s, retries=0, reconnect_delay=0)
    if ep.transport == "tcp":
        return AsyncModbusTcpClient(ep.host, port=ep.port, framer=FramerType.SOCKET, **common)
    if ep.transport == "rtu-over-tcp":
        return AsyncModbusTcpClient(ep.host, port=ep.port, framer=FramerType.RTU, **common)
    try:
        import serial  # noqa: F401  (pymodbus needs pyserial for serial ports)
    except ImportError:
        raise ConnectionException(
            f"transport 'serial' on {ep.serial_port} needs the pyserial package (pip install pyserial)"
        ) from None
    from pymodbus.client import AsyncModbusSerialClient

    return AsyncModbusSerialClient(
        ep.serial_port, framer=FramerType.RTU, baudrate=ep.baudrate, parity=ep.parity,
        stopbits=ep.stopbits, bytesize=ep.bytesize, **common,
    )


class Connection:
    """One client for one endpoint; every request holds the lock, so one is on the wire at a time."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.client = _make_client(endpoint)
        self.lock = asyncio.Lock()
        self.users = 0
        self.requests = 0  # requests sent, for tests and health figures

    @property
    def connected(self) -> bool:
        return bool(self.client.connected)

    async def _ensure_connected(self) -> None:
        if not self.client.connected:
            if not await self.client.connect():
                raise ConnectionException(f"cannot connect to {self.endpoint}")

    async def read(self, function: Function, address: int, count: int, unit_id: int) -> list[int]:
        """Read registers. Raises :class:`DeviceRefused` on an exception response and pymodbus's
        ``ModbusException``/``OSError``/``asyncio.TimeoutError`` when the link is down."""
        lock = self.lock
        await lock.acquire()  # (not ``async with``: one coroutine less per request, the poll loop's hot path)
        try:
            if not self.client.connected:  # checked here, not in a coroutine of its own
                await self._ensure_connected()
            read = (self.client.read_holding_registers if function == "holding"
                    else self.client.read_input_registers)
            self.requests += 1
            try:
                rr = await read(address, count=count, device_id=unit_id)
            except (ModbusException, OSError, asyncio.TimeoutError):
                # a late answer must not be taken for the next request's (RTU frames carry no
                # transaction id): drop the link, the next request reconnects
                self.client.close()
                raise
        finally:
            lock.release()
        if rr.isError():
            raise DeviceRefused(f"unit {unit_id}: {function} registers {address}+{count} refused: {rr}")
        return rr.registers  # a list of its own for each response

    def close(self) -> None:
        self.client.close()


class ConnectionPool:
    """Connections by endpoint, shared by every device behind that endpoint."""

    def __init__(self) -> None:
        self._conns: dict[tuple, Connection] = {}

    def acquire(self, endpoint: Endpoint) -> Connection:
        conn = self._conns.get(endpoint.key)
        if conn is None:
            conn = self._conns[endpoint.key] = Connection(endpoint)
        conn.users += 1
        return conn

    def release(self, conn: Connection) -> None:
        conn.users -= 1
        if conn.users <= 0:
            conn.close()
            if self._conns.get(conn.endpoint.key) is conn:
                del self._conns[conn.endpoint.key]

    def __len__(self) -> int:
        return len(self._conns)

    def close_all(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()


_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ConnectionPool] = weakref.WeakKeyDictionary()


def default_pool() -> ConnectionPool:
    """The pool of the running event loop (connections cannot cross loops)."""
    loop = asyncio.get_running_loop()
    pool = _POOLS.get(loop)
    if pool is None:
        pool = _POOLS[loop] = ConnectionPool()
    return pool
