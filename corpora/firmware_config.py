"""Firmware configuration constants for the Larkspur K3 garden robot.

This module is generated from the firmware build settings and used by the
desktop diagnostics tool. Values apply to firmware 3.4.1.
"""

FIRMWARE_VERSION = "3.4.1"
HARDWARE_REVISION = "K3-C"

# --- Cutting -----------------------------------------------------------------
BLADE_MOTOR_RPM = 3200            # nominal blade disc speed
BLADE_COUNT = 3
CUTTING_HEIGHT_MIN_MM = 20
CUTTING_HEIGHT_MAX_MM = 70

# --- Battery and charging ----------------------------------------------------
BATTERY_NOMINAL_VOLTAGE_V = 25.2
BATTERY_CAPACITY_AH = 4.2
LOW_BATTERY_RETURN_PERCENT = 18   # robot drives back to the station at this level
CHARGE_TEMP_MIN_C = 4             # below this, charging pauses (error E11)
CHARGE_TEMP_MAX_C = 45            # above this, charging pauses (error E11)

# --- Navigation and safety ---------------------------------------------------
MAX_SLOPE_DEG = 22
BOUNDARY_SIGNAL_TIMEOUT_S = 4     # E04 is raised after this many seconds without signal
LIFT_STOP_MS = 200                # blades stop within this time when the robot is lifted
ANTI_THEFT_ALARM_S = 60
MAX_DRIVE_SPEED_M_PER_S = 0.45

# --- Network -----------------------------------------------------------------
LOCAL_API_PORT = 8470
EVENTS_WEBSOCKET_PORT = 8471
LOCAL_API_RATE_LIMIT_PER_MIN = 30


def blade_tip_speed_m_per_s(disc_diameter_m: float = 0.25) -> float:
    """Return the blade tip speed for the nominal blade motor speed."""
    import math

    return math.pi * disc_diameter_m * BLADE_MOTOR_RPM / 60.0


def describe() -> str:
    """One-line summary used in the diagnostics log."""
    return (
        f"K3 firmware {FIRMWARE_VERSION}: blades {BLADE_MOTOR_RPM} rpm, "
        f"returns home at {LOW_BATTERY_RETURN_PERCENT}% battery"
    )


if __name__ == "__main__":
    print(describe())
