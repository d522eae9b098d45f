"""Run the collector for a site: every device polled at once, readings through the batching writer."""

from __future__ import annotations

import asyncio
import logging

import psycopg

from collectors.clock import Clock
from collectors.modbus import ModbusDevice, run_devices
from collectors.writer import BatchingWriter
from greengauge.site import SiteConfig

log = logging.getLogger(__name__)


def build_devices(site: SiteConfig, point_ids: dict[str, int]) -> list[ModbusDevice]:
    """One Modbus device per configured device, with the point id of each quantity it stores."""
    devices = []
    for d in site.devices:
        quantities = {p.quantity: point_ids[site.point_name(d, p)] for p in d.point_configs()}
        devices.append(ModbusDevice(d, quantities))
    return devices


async def collect(site: SiteConfig, point_ids: dict[str, int], database_url: str, clock: Clock,
                  stop: asyncio.Event, *, flush_interval_s: float = 1.0) -> BatchingWriter:
    """Poll until ``stop`` is set, then flush what is queued; return the writer (for its counts)."""
    writer = BatchingWriter(lambda: psycopg.connect(database_url), flush_interval_s=flush_interval_s)
    writer_task = asyncio.create_task(writer.run())
    try:
        await run_devices(build_devices(site, point_ids), clock, writer.submit, stop)
    finally:
        await writer.close()
        await writer_task
        writer.close_connection()
    return writer
