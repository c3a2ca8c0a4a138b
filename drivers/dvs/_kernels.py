"""Numba decoders of the DVS formats: one pass over a word view, writing into a DVS_EVENT array.

Every kernel has the same shape: `(words, start, out, state, counts, ...) -> (next, n_out, err)`.
It decodes from word `start` until the input is used up or `out` has no room for the next
word's events, keeps its decoder state in the int64 array `state` (so a stream can be fed in
chunks), adds to the int64 counters in `counts`, and returns the index of the next word to
decode, the number of events written, and the index of a malformed word (-1 when none).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# counter slots shared by all kernels (reader.counters names them)
C_OUT_OF_RANGE = 0  # events outside the sensor geometry (dropped)
C_BEFORE_TIME = 1  # events before the first time reference (dropped)
C_TRIGGER = 2  # external trigger / sync events (skipped)
C_OTHER = 3  # vendor / APS / IMU / special words (skipped)
C_BACKWARDS = 4  # timestamps that went backwards (kept)
C_INVALID = 5  # events flagged invalid by the format (dropped)
C_WRAPS = 6  # timestamp wrap-arounds
N_COUNTS = 7


@njit(cache=True, nogil=True)
def _bswap32(v: np.int64) -> np.int64:
    return ((v & 0xFF) << 24) | ((v & 0xFF00) << 8) | ((v >> 8) & 0xFF00) | ((v >> 24) & 0xFF)


@njit(cache=True, nogil=True)
def evt2_decode(words, start, out, st, cnt, width, height):  # noqa: ANN001, ANN201
    """EVT 2.0 32-bit LE words. state: [time_high, have_time_high, wraps]."""
    th = st[0]
    have = st[1]
    wraps = st[2]
    cap = out.shape[0]
    n = 0
    i = start
    nw = words.shape[0]
    err = -1
    while i < nw and n < cap:
        w = np.int64(words[i])
        typ = w >> 28
        if typ <= 1:
            if have == 0:
                cnt[C_BEFORE_TIME] += 1
            else:
                x = (w >> 11) & 0x7FF
                y = w & 0x7FF
                if x < width and y < height:
                    out[n].t = (wraps << 34) | (th << 6) | ((w >> 22) & 63)
                    out[n].x = x
                    out[n].y = y
                    out[n].p = typ
                    n += 1
                else:
                    cnt[C_OUT_OF_RANGE] += 1
        elif typ == 8:
            nth = w & 0xFFFFFFF
            if have != 0 and nth < th:
                wraps += 1
                cnt[C_WRAPS] += 1
            th = nth
            have = 1
        elif typ == 0xA:
            cnt[C_TRIGGER] += 1
        elif typ == 0xE or typ == 0xF:
            cnt[C_OTHER] += 1
        else:
            err = i
            break
        i += 1
    st[0] = th
    st[1] = have
    st[2] = wraps
    return i, n, err


#: EVT 3.0 word types outside the hot path (vectors, triggers, others, reserved): a bit per
#: type, clear for ADDR_Y (0x0), ADDR_X (0x2), TIME_LOW (0x6) and TIME_HIGH (0x8)
_EVT3_SLOW_TYPES = 0xFEBA


@njit(cache=True, nogil=True)
def evt3_decode(words, start, out, st, cnt, width, height, t0):  # noqa: ANN001, ANN201
    """EVT 3.0 16-bit LE words; `t0` is added to every timestamp.

    state: [y, base_x, vect_pol, time_high, time_low, wraps, have_time_high, have_y].
    Once a TIME_HIGH and an ADDR_Y were seen, runs of ADDR_Y, ADDR_X, TIME_LOW and TIME_HIGH
    words (almost all words of a sparse stream) go through an inner loop without
    data-dependent branches, which a type switch would mispredict about once per event: each
    word updates y / time with selects and writes a candidate event at `out[n]`, and `n`
    advances for ADDR_X words; the run's events are range-checked afterwards (and compacted
    in the rare case that one is outside the sensor). Vector, trigger, other and reserved
    words, TIME_HIGH wrap-arounds and every word before that point take the general path.
    """
    y = st[0]
    bx = st[1]
    vp = st[2]
    th = st[3]
    tl = st[4]
    wraps = st[5]
    have = st[6]
    have_y = st[7]
    wraps0 = wraps
    c_range = np.int64(0)
    cap = out.shape[0]
    lim = cap - 12  # room for the 12 events of a VECT_12 word
    n = 0
    i = start
    nw = words.shape[0]
    err = -1
    while i < nw and n <= lim:
        if have != 0 and have_y != 0:
            # the hot loop writes at most one event per word: bound it by words, not events;
            # unsigned indices spare it the negative-index wrap-around code
            n0 = n
            tw = t0 + (wraps << 24)  # a wrap-around leaves the loop, so this stays fixed
            thi = tw + (th << 12)
            iu = np.uint64(i)
            nu = np.uint64(n)
            end = np.uint64(min(nw, i + lim - n + 1))
            while iu < end:
                w = np.int64(words[iu])
                typ = w >> 12
                if (_EVT3_SLOW_TYPES >> typ) & 1:
                    break
                v = w & 0xFFF
                thn = thi ^ ((thi ^ (tw + (v << 12))) & -np.int64(typ == 0x8))
                if thn < thi:  # TIME_HIGH went back: a wrap-around, for the general path
                    break
                thi = thn
                x = v & 0x7FF
                y ^= (y ^ x) & -np.int64(typ == 0x0)
                tl ^= (tl ^ v) & -np.int64(typ == 0x6)
                out[nu].t = thi + tl
                out[nu].x = x
                out[nu].y = y
                out[nu].p = v >> 11
                nu += np.uint64(typ == 0x2)
                iu += np.uint64(1)
            th = (thi - tw) >> 12
            i = np.int64(iu)
            n = np.int64(nu)
            # coordinates are checked once per event here rather than once per word above
            bad = False
            for k in range(n0, n):
                if out[k].x >= width or out[k].y >= height:
                    bad = True
                    break
            if bad:
                m = n0
                for k in range(n0, n):
                    if out[k].x < width and out[k].y < height:
                        out[m] = out[k]
                        m += 1
                    else:
                        c_range += 1
                n = m
            if i >= nw or n > lim:
                break
        # one word on the general path
        w = np.int64(words[i])
        typ = w >> 12
        if typ == 0x0:
            y = w & 0x7FF
            have_y = 1
        elif typ == 0x2:
            if have == 0 or have_y == 0:
                cnt[C_BEFORE_TIME] += 1
            else:
                x = w & 0x7FF
                if x < width and y < height:
                    out[n].t = t0 + ((wraps << 24) | (th << 12) | tl)
                    out[n].x = x
                    out[n].y = y
                    out[n].p = (w >> 11) & 1
                    n += 1
                else:
                    c_range += 1
        elif typ == 0x3:
            bx = w & 0x7FF
            vp = (w >> 11) & 1
        elif typ == 0x4 or typ == 0x5:
            nb = 12 if typ == 0x4 else 8
            mask = w & 0xFFF if typ == 0x4 else w & 0xFF
            if have == 0 or have_y == 0:
                while mask:
                    cnt[C_BEFORE_TIME] += mask & 1
                    mask >>= 1
            else:
                t = t0 + ((wraps << 24) | (th << 12) | tl)
                for b in range(nb):
                    if (mask >> b) & 1:
                        x = bx + b
                        if x < width and y < height:
                            out[n].t = t
                            out[n].x = x
                            out[n].y = y
                            out[n].p = vp
                            n += 1
                        else:
                            c_range += 1
            bx += nb
        elif typ == 0x6:
            tl = w & 0xFFF
        elif typ == 0x8:
            nth = w & 0xFFF
            if have != 0 and nth < th:
                wraps += 1
            th = nth
            have = 1
        elif typ == 0xA:
            cnt[C_TRIGGER] += 1
        elif typ == 0x7 or typ == 0xE or typ == 0xF:
            cnt[C_OTHER] += 1
        else:
            err = i
            break
        i += 1
    cnt[C_OUT_OF_RANGE] += c_range
    cnt[C_WRAPS] += wraps - wraps0
    st[0] = y
    st[1] = bx
    st[2] = vp
    st[3] = th
    st[4] = tl
    st[5] = wraps
    st[6] = have
    st[7] = have_y
    return i, n, err


@njit(cache=True, nogil=True)
def _unwrap32(traw, st, cnt):  # noqa: ANN001, ANN202
    """Unsigned 32-bit time with wrap detection; state [last_raw, offset, have]."""
    if st[2] != 0 and traw < st[0]:
        if st[0] - traw > 0x80000000:
            st[1] += 0x100000000
            cnt[C_WRAPS] += 1
        else:
            cnt[C_BACKWARDS] += 1
    st[0] = traw
    st[2] = 1
    return st[1] + traw


@njit(cache=True, nogil=True)
def aedat2_decode(words, start, out, st, cnt, width, height, layout, opts):  # noqa: ANN001, ANN201
    """AEDAT 2.0 records (BE uint32 address, BE int32 time) read as LE uint32 pairs.

    layout 0 = DVS128 (opts bit0: jAER polarity, bit1: jAER x), 1 = DAVIS (opts bit0: raw
    axes instead of jAER's flip). state: [last_raw_t, offset, have].
    """
    cap = out.shape[0]
    n = 0
    i = start
    nrec = words.shape[0] // 2
    while i < nrec and n < cap:
        a = _bswap32(np.int64(words[2 * i]))
        t = _unwrap32(_bswap32(np.int64(words[2 * i + 1])), st, cnt)
        i += 1
        if layout == 0:
            if a & 0x8000:
                cnt[C_TRIGGER] += 1
                continue
            if a >> 16:
                cnt[C_INVALID] += 1
                continue
            xr = (a >> 1) & 0x7F
            yr = (a >> 8) & 0x7F
            b0 = a & 1
            x = 127 - xr if opts & 2 else xr
            p = 1 - b0 if opts & 1 else b0
            y = yr
        else:
            if a >> 31:
                cnt[C_OTHER] += 1
                continue
            if (a >> 10) & 1:
                cnt[C_TRIGGER] += 1
                continue
            xr = (a >> 12) & 0x3FF
            yr = (a >> 22) & 0x1FF
            p = (a >> 11) & 1
            if xr >= width or yr >= height:
                cnt[C_OUT_OF_RANGE] += 1
                continue
            if opts & 1:
                x = xr
                y = yr
            else:
                x = width - 1 - xr
                y = height - 1 - yr
        if x >= width or y >= height:
            cnt[C_OUT_OF_RANGE] += 1
            continue
        out[n].t = t
        out[n].x = x
        out[n].y = y
        out[n].p = p
        n += 1
    return i, n, -1


@njit(cache=True, nogil=True)
def dat_decode(words, start, out, st, cnt, width, height):  # noqa: ANN001, ANN201
    """Prophesee DAT Event2d/EventCD records (LE uint32 t, uint32 packed x/y/p) as uint32 pairs."""
    cap = out.shape[0]
    n = 0
    i = start
    nrec = words.shape[0] // 2
    while i < nrec and n < cap:
        t = _unwrap32(np.int64(words[2 * i]), st, cnt)
        w = np.int64(words[2 * i + 1])
        i += 1
        x = w & 0x3FFF
        y = (w >> 14) & 0x3FFF
        p = w >> 28
        if p > 1:
            cnt[C_INVALID] += 1
            continue
        if x >= width or y >= height:
            cnt[C_OUT_OF_RANGE] += 1
            continue
        out[n].t = t
        out[n].x = x
        out[n].y = y
        out[n].p = p
        n += 1
    return i, n, -1


#: N-MNIST record y value marking a timestamp overflow, and what it adds (tonic's convention)
NMNIST_OVERFLOW_Y = 240
NMNIST_OVERFLOW_US = 1 << 13


@njit(cache=True, nogil=True)
def nmnist_decode(buf, start, out, st, cnt, width, height):  # noqa: ANN001, ANN201
    """N-MNIST / N-Caltech101 ATIS 5-byte records over a uint8 view; `start` is a record index.

    Record: x, y, then polarity (bit 7) and a 23-bit big-endian µs timestamp in 3 bytes. A
    record with y == 240 is a timestamp overflow: it adds 2^13 µs to the later timestamps and
    is counted in C_WRAPS. state: [overflow offset, last t, have].
    """
    cap = out.shape[0]
    n = 0
    i = start
    nrec = buf.shape[0] // 5
    while i < nrec and n < cap:
        k = 5 * i
        x = np.int64(buf[k])
        y = np.int64(buf[k + 1])
        b2 = np.int64(buf[k + 2])
        i += 1
        if y == NMNIST_OVERFLOW_Y:
            st[0] += NMNIST_OVERFLOW_US
            cnt[C_WRAPS] += 1
            continue
        t = st[0] + (((b2 & 0x7F) << 16) | (np.int64(buf[k + 3]) << 8) | np.int64(buf[k + 4]))
        if st[2] != 0 and t < st[1]:
            cnt[C_BACKWARDS] += 1
        st[1] = t
        st[2] = 1
        if x >= width or y >= height:
            cnt[C_OUT_OF_RANGE] += 1
            continue
        out[n].t = t
        out[n].x = x
        out[n].y = y
        out[n].p = b2 >> 7
        n += 1
    return i, n, -1


@njit(cache=True, nogil=True)
def aedat3_polarity_decode(words, start, out, st, cnt, width, height, ts_overflow):  # noqa: ANN001, ANN201
    """AEDAT 3.1 polarity events (LE uint32 data, int32 time) as uint32 pairs."""
    cap = out.shape[0]
    n = 0
    i = start
    nrec = words.shape[0] // 2
    hi = np.int64(ts_overflow) << 31
    while i < nrec and n < cap:
        d = np.int64(words[2 * i])
        t = hi | np.int64(words[2 * i + 1])
        i += 1
        if (d & 1) == 0:
            cnt[C_INVALID] += 1
            continue
        x = d >> 17
        y = (d >> 2) & 0x7FFF
        if x >= width or y >= height:
            cnt[C_OUT_OF_RANGE] += 1
            continue
        if st[2] != 0 and t < st[0]:
            cnt[C_BACKWARDS] += 1
        st[0] = t
        st[2] = 1
        out[n].t = t
        out[n].x = x
        out[n].y = y
        out[n].p = (d >> 1) & 1
        n += 1
    return i, n, -1


@njit(cache=True, nogil=True)
def aedat4_copy(src, out, cnt, width, height):  # noqa: ANN001, ANN201
    """AEDAT 4.0 16-byte event structs -> DVS_EVENT (range-checked). Returns events written."""
    n = 0
    for i in range(src.shape[0]):
        x = np.int64(src[i].x)
        y = np.int64(src[i].y)
        p = np.int64(src[i].p)
        if x < 0 or y < 0 or x >= width or y >= height:
            cnt[C_OUT_OF_RANGE] += 1
            continue
        if p > 1:
            cnt[C_INVALID] += 1
            continue
        out[n].t = src[i].t
        out[n].x = x
        out[n].y = y
        out[n].p = p
        n += 1
    return n


@njit(cache=True, nogil=True)
def evt3_encode(ev, out, st):  # noqa: ANN001, ANN201
    """DVS_EVENT (time-sorted, t >= 0, x/y < 2048) -> EVT 3.0 words; returns words written.

    state: [time_high, time_low, wraps, y, have] of the stream so far. `out` needs room for
    6 + 2 * (wraps crossed) + 4 words per event. Returns -1 - i when event i goes back in time.
    """
    th = st[0]
    tl = st[1]
    wraps = st[2]
    y = st[3]
    have = st[4]
    k = 0
    for i in range(ev.shape[0]):
        t = np.int64(ev[i].t)
        cur = (wraps << 24) | (th << 12) | tl
        if have != 0 and t < cur:
            return -1 - i
        nw = t >> 24
        nth = (t >> 12) & 0xFFF
        ntl = t & 0xFFF
        if have == 0:
            out[k] = 0x8000
            k += 1
            th = 0
            tl = 0
            have = 1
            y = -1
            out[k] = 0x6000
            k += 1
        while wraps < nw:
            if th != 0xFFF:
                out[k] = 0x8FFF
                k += 1
            out[k] = 0x8000
            k += 1
            th = 0
            wraps += 1
        if nth != th:
            out[k] = 0x8000 | nth
            k += 1
            th = nth
        if ntl != tl:
            out[k] = 0x6000 | ntl
            k += 1
            tl = ntl
        yy = np.int64(ev[i].y)
        if yy != y:
            out[k] = yy & 0x7FF
            k += 1
            y = yy
        out[k] = 0x2000 | (np.int64(ev[i].p & 1) << 11) | (np.int64(ev[i].x) & 0x7FF)
        k += 1
    st[0] = th
    st[1] = tl
    st[2] = wraps
    st[3] = y
    st[4] = have
    return k


@njit(cache=True, nogil=True)
def _aestream_span(words, lo, hi, out, n, st, cnt, width, height, t_now):  # noqa: ANN001, ANN201
    """Decode the AEStream words lo..hi (one datagram) into out from index n: (events written
    in all, 1 if the last event is torn else 0)."""
    i = lo
    while i < hi:
        w = np.int64(words[i])
        if w >> 31:
            t = t_now
            i += 1
        else:
            if i + 1 >= hi:
                return n, 1
            t = _unwrap32(np.int64(words[i + 1]), st, cnt)
            i += 2
        x = (w >> 16) & 0x7FFF
        y = w & 0x7FFF
        if x >= width or y >= height:
            cnt[C_OUT_OF_RANGE] += 1
            continue
        out[n].t = t
        out[n].x = x
        out[n].y = y
        out[n].p = (w >> 15) & 1
        n += 1
    return n, 0


@njit(cache=True, nogil=True)
def aestream_decode(words, out, st, cnt, width, height, t_now):  # noqa: ANN001, ANN201
    """AEStream UDP words (LE uint32: bit 31 no-timestamp flag, x 30-16, p 15, y 14-0).

    A word with bit 31 clear is followed by a uint32 µs timestamp (unwrapped with state
    [last_raw, offset, have]); words without one get `t_now`. Returns (events, bad words).
    """
    return _aestream_span(words, 0, words.shape[0], out, 0, st, cnt, width, height, t_now)


@njit(cache=True, nogil=True)
def aestream_decode_slots(words, starts, nwords, out, ev_ends, st, cnt, width, height, t_now):  # noqa: ANN001, ANN201
    """Datagrams of whole words at word offsets starts[i], nwords[i] words each (the slots of a
    `DatagramReader` buffer), each decoded as `aestream_decode` decodes one, in one call.
    ev_ends[i] = events written up to the end of datagram i. Returns (events, datagrams with
    a torn last event)."""
    n = 0
    bad = 0
    for d in range(starts.shape[0]):
        s = starts[d]
        n, torn = _aestream_span(words, s, s + nwords[d], out, n, st, cnt, width, height, t_now)
        bad += torn
        ev_ends[d] = n
    return n, bad


@njit(cache=True, nogil=True)
def edvs_decode(buf, out, st, cnt, ts_mode, t_now, invert):  # noqa: ANN001, ANN201
    """eDVS binary events `1yyyyyyy pxxxxxxx` + timestamp; resynchronises on a clear MSB.

    ts_mode: 0 none (t_now), 1 delta (1-4 bytes of 7 bits, MSB-first, last byte has bit 7
    set), 2/3/4 absolute big-endian of that many bytes. state: [last_raw, offset, have,
    delta_time]. Returns (bytes consumed, events written); an incomplete event stays unread.
    C_INVALID counts bytes skipped to regain sync.
    """
    n = 0
    i = 0
    nb = buf.shape[0]
    cap = out.shape[0]
    while i < nb and n < cap:
        b0 = np.int64(buf[i])
        if (b0 & 0x80) == 0:
            cnt[C_INVALID] += 1
            i += 1
            continue
        if i + 2 > nb:
            break
        b1 = np.int64(buf[i + 1])
        if ts_mode == 0:
            t = t_now
            used = 2
        elif ts_mode == 1:
            d = np.int64(0)
            j = i + 2
            done = False
            while j < nb and j < i + 6:
                c = np.int64(buf[j])
                d = (d << 7) | (c & 0x7F)
                j += 1
                if c & 0x80:
                    done = True
                    break
            if not done:
                if j >= i + 6:  # four bytes without an end marker: garbage
                    cnt[C_INVALID] += 1
                    i += 1
                    continue
                break  # wait for more bytes
            st[3] += d
            t = st[3]
            used = j - i
        else:
            if i + 2 + ts_mode > nb:
                break
            raw = np.int64(0)
            for k in range(ts_mode):
                raw = (raw << 8) | np.int64(buf[i + 2 + k])
            span = np.int64(1) << (8 * ts_mode)
            if st[2] != 0 and raw < st[0]:
                st[1] += span
                cnt[C_WRAPS] += 1
            st[0] = raw
            st[2] = 1
            t = st[1] + raw
            used = 2 + ts_mode
        out[n].t = t
        out[n].x = b1 & 0x7F
        out[n].y = b0 & 0x7F
        out[n].p = ((b1 >> 7) & 1) ^ invert
        n += 1
        i += used
    return i, n
