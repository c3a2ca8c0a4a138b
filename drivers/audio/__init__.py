"""Audio drivers: WAV replay (`wav`) and live PCM over UDP (`pcm_udp`) or stdin (`pcm_stdin`)."""
