"""LiDAR drivers: Velodyne VLP-16 / HDL-32E (live UDP and pcap replay) and Ouster legacy.

Packets are decoded by numba kernels into `edgesnn.events.LIDAR_POINT` records; pcap files are
read with the network drivers' pcap reader.
"""
