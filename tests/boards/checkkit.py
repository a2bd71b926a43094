"""What the port models' check scripts (portsim_checks.py, pwm_slice_checks.py, run on
the unix port) share."""


def raises(f, *args):
    """The name of the exception f(*args) raises, or None."""
    try:
        f(*args)
    except Exception as e:  # noqa: BLE001
        return type(e).__name__
    return None
