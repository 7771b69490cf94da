# Prints "<module> <bytes>" for each module named on the command line: the
# heap it keeps once imported (garbage collected before and after), then
# forgets it. Modules of lib/ it imports stay, as they would on a board.
import gc
import sys

for name in sys.argv[1:]:
    gc.collect()
    before = gc.mem_alloc()
    __import__(name)
    gc.collect()
    print(name, gc.mem_alloc() - before)
    del sys.modules[name]
