# Readings taken while the link is down wait here, in order, in storage
# allocated once. When it is full the oldest reading is dropped and counted.


class Ring:
    def __init__(self, capacity):
        if capacity < 1:
            raise ValueError("ring buffer capacity must be >= 1, got %r" % (capacity,))
        self.capacity = capacity
        self.channel = [0] * capacity  # which sensor channel the value is from
        self.value = [0] * capacity  # fixed-point value as the driver gave it
        self.taken = [0] * capacity  # when it was read (node.timestamp.now_s(), 0 if unknown)
        self._head = 0  # oldest
        self.count = 0
        self.dropped = 0

    def push(self, channel, value, taken=0):
        if self.count == self.capacity:
            self._head = (self._head + 1) % self.capacity
            self.count -= 1
            self.dropped += 1
        i = (self._head + self.count) % self.capacity
        self.channel[i] = channel
        self.value[i] = value
        self.taken[i] = taken
        self.count += 1

    def oldest(self):
        """Index of the oldest reading (read its fields, then pop()), or -1."""
        return self._head if self.count else -1

    def pop(self):
        if self.count:
            self._head = (self._head + 1) % self.capacity
            self.count -= 1
