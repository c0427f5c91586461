"""`deadline`: the guard the scale tests put around work that must stay linear."""
import contextlib
import signal


@contextlib.contextmanager
def deadline(seconds, what):
    """Fail (instead of running on for minutes) if the block takes longer than `seconds`."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"{what} took more than {seconds:.0f} s: superlinear in the number of equations?")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except TimeoutError as error:
        # a fresh exception without the interrupted frames: pytest's report would
        # otherwise print their arguments (the jaxpr), at the very cost being measured
        raise TimeoutError(str(error)) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
