"""Network traffic drivers: pcap/pcapng files, live AF_PACKET capture, NSL-KDD records.

Containers are recognised by their magic number, never by file name. Frames are decoded by a
numba kernel (`decode`) into `edgesnn.events.PACKET` records; `flows` aggregates packets into
sliding-window `FLOW_FEATURES` records.
"""
