"""The energy of a training run, measured with codecarbon offline for France, or estimated from CPU time.

codecarbon's ``OfflineEmissionsTracker`` makes no network call, writes no file, and logs errors only.
On a machine without RAPL counters it estimates the CPU power from its TDP table and the process load;
the method is recorded with the numbers. When codecarbon cannot run at all, the process CPU time at
:data:`FALLBACK_POWER_W` stands in, and the method says so.
"""

from __future__ import annotations

import importlib.metadata
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger(__name__)

#: Used only when codecarbon itself cannot run: a conservative average draw of one busy core and its RAM share,
#: in watts.
FALLBACK_POWER_W = 15.0
#: Average carbon intensity of the French grid (gCO2e/kWh), used with the fallback only.
FALLBACK_FRA_G_PER_KWH = 56.0


@dataclass(frozen=True)
class EnergyMeasurement:
    """Energy of one training run.

    :param kwh: energy consumed (CPU, RAM, GPU), in kWh.
    :param gco2e: emissions, in grams of CO2 equivalent, for the French grid mix.
    :param duration_s: wall time of the measured block.
    :param method: how it was measured, e.g. ``codecarbon 3.3.2 offline FRA; cpu: cpu_load (TDP 8 W)``.
    """

    kwh: float
    gco2e: float
    duration_s: float
    method: str
    country_iso_code: str = "FRA"
    cpu_power_w: float | None = None
    ram_power_w: float | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> EnergyMeasurement:
        return cls(**data)


class _EnergyBox:
    measurement: EnergyMeasurement | None = None


@contextmanager
def measure_energy(*, country_iso_code: str = "FRA") -> Iterator[_EnergyBox]:
    """Measure the energy of the ``with`` block; read ``box.measurement`` after it.

    :param country_iso_code: grid whose carbon intensity converts kWh to gCO2e.
    """
    box = _EnergyBox()
    started = time.perf_counter()
    cpu_started = time.process_time()
    tracker = _start_tracker(country_iso_code)
    try:
        yield box
    finally:
        duration = time.perf_counter() - started
        measurement = _tracker_measurement(tracker, duration, country_iso_code) if tracker is not None else None
        box.measurement = measurement or _cpu_time_estimate(
            time.process_time() - cpu_started, duration, country_iso_code
        )


def _start_tracker(country_iso_code: str) -> Any:
    """A started codecarbon tracker, or ``None`` when codecarbon cannot run here."""
    try:
        from codecarbon import OfflineEmissionsTracker

        # codecarbon sets its own logger level at import and logs at INFO while it initialises
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        tracker = OfflineEmissionsTracker(
            # output_methods=[]: no CSV, API, logger or Prometheus output, whatever a config file or env var says
            country_iso_code=country_iso_code,
            output_methods=[],
            log_level="error",
            tracking_mode="process",
            allow_multiple_runs=True,  # several tasks may train at once; no lock file in /tmp
            measure_power_secs=15,
        )
        tracker.start()
    except Exception as exc:  # noqa: BLE001 - a broken meter must not block training; the method says so
        log.warning("codecarbon unavailable (%s); energy estimated from CPU time", type(exc).__name__)
        return None
    return tracker


def _tracker_measurement(tracker: Any, duration: float, country_iso_code: str) -> EnergyMeasurement | None:
    """Stop ``tracker`` and read its measurement; ``None`` if it fails (the CPU-time estimate applies)."""
    try:
        emissions_kg = tracker.stop()
        data = tracker.final_emissions_data
        modes = []
        for hardware in getattr(tracker, "_hardware", []):
            mode = getattr(hardware, "_mode", None)
            if mode:
                tdp = getattr(hardware, "_tdp", None)
                modes.append(f"{type(hardware).__name__.lower()}: {mode}" + (f" (TDP {tdp} W)" if tdp else ""))
        version = importlib.metadata.version("codecarbon")  # typed, unlike codecarbon.__version__
        return EnergyMeasurement(
            kwh=float(data.energy_consumed),
            gco2e=float(emissions_kg or 0.0) * 1000.0,
            duration_s=duration,
            method=f"codecarbon {version} offline {country_iso_code}, process tracking"
            + (f"; {', '.join(modes)}" if modes else ""),
            country_iso_code=country_iso_code,
            cpu_power_w=float(data.cpu_power),
            ram_power_w=float(data.ram_power),
        )
    except Exception as exc:  # noqa: BLE001 - a broken meter must not block training; the method says so
        log.warning("codecarbon failed to stop (%s); energy estimated from CPU time", type(exc).__name__)
        return None


def _cpu_time_estimate(cpu_seconds: float, duration: float, country_iso_code: str) -> EnergyMeasurement:
    kwh = cpu_seconds * FALLBACK_POWER_W / 3.6e6
    return EnergyMeasurement(
        kwh=kwh,
        gco2e=kwh * FALLBACK_FRA_G_PER_KWH,
        duration_s=duration,
        method=(
            f"estimate: process CPU time x {FALLBACK_POWER_W} W, {FALLBACK_FRA_G_PER_KWH} gCO2e/kWh"
            " (codecarbon unavailable)"
        ),
        country_iso_code=country_iso_code,
    )
