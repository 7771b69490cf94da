"""From per-round records to figures: {client: {figure: {min, median, max,
runs}}}, and the comparisons the report makes with them."""

import statistics


def flatten(main):
    """One round's main-run JSON -> {figure: value}. CPU in µs per publish,
    rates in msg/s, heap in bytes."""
    out = {}
    for key, value in main.items():
        if isinstance(value, dict) and "cpu_ns" in value:
            out["cpu_" + key] = value["cpu_ns"] / 1000
            out["rate_" + key] = value["rate"]
            out["count_" + key] = value["count"]
        elif isinstance(value, dict) and "per" in value:
            out[key] = value["per"]
            out[key + "_total"] = value["total"]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = value
    return out


def collect(clients, records, board32, sizes):
    """{client: {figure: [value per round]}}; the 32-bit figures and the
    .mpy sizes, measured once, as one-value lists (prefixed b32_ and mpy_)."""
    table = {}
    for client in clients:
        row = table.setdefault(client.key, {})
        for record in records:
            if record["client"] != client.key:
                continue
            for key, value in flatten(record.get("main", {})).items():
                row.setdefault(key, []).append(value)
            for name, arrival in record.items():
                if name.startswith("arrival") and isinstance(arrival, dict):
                    suffix = name[len("arrival") :]
                    row.setdefault("arrival_rate" + suffix, []).append(arrival["arrival_rate"])
                    row.setdefault("publish_rate" + suffix, []).append(arrival["publish_rate"])
        for key, value in board32.get(client.key, {}).items():
            if isinstance(value, (int, float)):
                row["b32_" + key] = [value]
        if sizes.get(client.key):
            row["mpy_size"] = [sum(sizes[client.key].values())]
    return table


def stats(values):
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "runs": values}


def aggregate(table):
    return {key: {name: stats(values) for name, values in row.items() if values} for key, row in table.items()}


def median(figures, client, name):
    s = figures.get(client, {}).get(name)
    return s["median"] if s else None


def best_peer(figures, peers, name):
    """(peer, value): the lowest median of a lower-is-better figure among peers."""
    found = [(peer, median(figures, peer, name)) for peer in peers]
    found = [(peer, value) for peer, value in found if value is not None]
    return min(found, key=lambda item: item[1]) if found else (None, None)


def ratio(value, reference):
    if value is None or reference is None or reference == 0:
        return None
    return value / reference
