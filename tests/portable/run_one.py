# Runs one test function of a portable test module under MicroPython:
#   micropython run_one.py MODULE FUNCTION
#   micropython -m run_one MODULE FUNCTION   (compiled, from build/mpy/portable)
# Prints PASS, SKIP <reason> or the traceback, and exits 0 / 0 / 1.
import gc
import sys

import support


def main():
    module_name, test_name = sys.argv[1], sys.argv[2]
    module = __import__(module_name)
    test = getattr(module, test_name)
    # As firmware/main.py does before it makes the node: what loading left
    # behind is freed before the large long-lived buffers are allocated, so
    # they do not land between the loader's garbage and fragment the heap.
    gc.collect()
    try:
        test()
    except support.SkipTest as e:
        print("SKIP", e.args[0] if e.args else "")
        return 0
    except BaseException as e:  # noqa: BLE001 - report every failure, then exit non-zero
        sys.print_exception(e)
        print("FAIL")
        return 1
    print("PASS")
    return 0


sys.exit(main())
