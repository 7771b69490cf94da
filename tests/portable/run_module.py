# Runs the test functions of one portable test module in one process:
#   run_module.py MODULE TEST [TEST ...]
# For each test, in order, prints a line "RESULT <test> PASS", "RESULT <test>
# SKIP <reason>" or, after its traceback, "RESULT <test> FAIL"; then "DONE".
# Used where a process per test costs too much (the 32-bit WebAssembly port
# loads in Node in about 0.2 s).
import gc
import sys

import support


def run(module, name):
    gc.collect()
    try:
        getattr(module, name)()
    except support.SkipTest as e:
        return "SKIP " + (e.args[0] if e.args else "")
    except BaseException as e:  # noqa: BLE001 - report every failure, go on with the next test
        sys.print_exception(e, sys.stdout)
        return "FAIL"
    return "PASS"


def main():
    module = __import__(sys.argv[1])
    for name in sys.argv[2:]:
        print("RESULT %s %s" % (name, run(module, name)))
    print("DONE")


main()
