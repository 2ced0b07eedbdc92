/*
 * libpgbunker: the few byte loops that must run at memory speed.
 *
 *  - PostgreSQL data-page checksums over a whole buffer of pages in one call
 *    (crossing the FFI boundary once per buffer, never once per page);
 *  - CRC-32C (Castagnoli), with the SSE4.2 instruction where the CPU has it;
 *  - XXH32, the lz4 frame's content checksum (scalar: see below);
 *  - XXH3-128 checksums of the blocks of a buffer (block incremental), through the system libxxhash;
 *  - a writer thread, so a direct (O_DIRECT) write, which blocks until the device has the data,
 *    overlaps the decompression and hashing of the next buffer.
 *
 * The page checksum is PostgreSQL's data_checksums algorithm: 32 interleaved
 * FNV-1a-like lanes over the page read as uint32 words with pd_checksum taken
 * as zero, folded by xor, mixed with the block number, reduced to 1..65535.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "pgbunker.h"

#define N_SUMS 32
#define FNV_PRIME 16777619u

/* Lane seeds of PostgreSQL's checksum algorithm (a format fact). */
static const uint32_t lane_seed[N_SUMS] = {
    0x5B1F36E9, 0xB8525960, 0x02AB50AA, 0x1DE66D2A, 0x79FF467A, 0x9BB9F8A3, 0x217E7CD2, 0x83E13D2C,
    0xF8D4474F, 0xE39EB970, 0x42C6AE16, 0x993216FA, 0x7B093B5D, 0x98DAFF3C, 0xF718902A, 0x0B1C9CDB,
    0xE58F764B, 0x187636BC, 0x5D7B3BB1, 0xE73DE7DE, 0x92BEC979, 0xCCA6C0B2, 0x304A0979, 0x85AA43D4,
    0x783125BB, 0x6CA8EAA2, 0xE407EAC6, 0x4B5CFC3E, 0x9FBF8C76, 0x15CA20BE, 0xF2CA9FD3, 0x959BD756,
};

#define MIX(lane, value)                      \
    do {                                      \
        uint32_t t_ = (lane) ^ (value);       \
        (lane) = t_ * FNV_PRIME ^ (t_ >> 17); \
    } while (0)

/* Offsets inside PageHeaderData (stable since PostgreSQL 8.3). */
#define PD_LSN_HI 0
#define PD_LSN_LO 4
#define PD_CHECKSUM 8
#define PD_UPPER 14

/*
 * The lane loop is written so the compiler can vectorise it (32 independent lanes, no branch
 * inside, words read in place): with AVX2 a row of 128 bytes is four 8-lane multiplies, 0.03 s
 * per GiB against 0.11 for the scalar loop it replaced (bench/RESULTS.md). The AVX2 build of the
 * loop is chosen at run time when the CPU has it; the baseline x86-64 build serves any other (the
 * executable must run on any x86-64 machine). Tests force the baseline one to check both.
 */
/* Pages are read in place from any buffer offset (no alignment is promised). */
typedef uint32_t u32_unaligned __attribute__((aligned(1), may_alias));

static inline __attribute__((always_inline)) uint16_t checksum_body(const uint8_t *page, uint32_t page_size, uint32_t block_no)
{
    uint32_t lanes[N_SUMS];
    uint32_t rows = page_size / (sizeof(uint32_t) * N_SUMS);
    const u32_unaligned *w = (const u32_unaligned *)page;
    uint32_t result = 0;

    memcpy(lanes, lane_seed, sizeof(lanes));

    /* Row 0: pd_checksum (bytes 8-9, the low half of word 2 on little-endian) counts as zero. */
    for (uint32_t j = 0; j < N_SUMS; j++)
        MIX(lanes[j], j == 2 ? w[j] & 0xFFFF0000u : w[j]);

    for (uint32_t i = 1; i < rows; i++)
        for (uint32_t j = 0; j < N_SUMS; j++)
            MIX(lanes[j], w[i * N_SUMS + j]);

    for (int round = 0; round < 2; round++)
        for (uint32_t j = 0; j < N_SUMS; j++)
            MIX(lanes[j], 0);

    for (uint32_t j = 0; j < N_SUMS; j++)
        result ^= lanes[j];

    result ^= block_no;
    return (uint16_t)((result % 65535) + 1);
}

static uint16_t checksum_baseline(const uint8_t *page, uint32_t page_size, uint32_t block_no)
{
    return checksum_body(page, page_size, block_no);
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static uint16_t checksum_avx2(const uint8_t *page, uint32_t page_size, uint32_t block_no)
{
    return checksum_body(page, page_size, block_no);
}
#endif

static int use_avx2 = -1;

/* 1 when page checksums use the AVX2 loop. */
int pgb_page_checksum_avx2(void)
{
    if (use_avx2 < 0) {
#if defined(__x86_64__)
        __builtin_cpu_init();
        use_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
#else
        use_avx2 = 0;
#endif
    }
    return use_avx2;
}

/* Force the baseline loop (tests compare both builds), or back to auto-detect. */
void pgb_page_checksum_force_baseline(int force)
{
    use_avx2 = force ? 0 : -1;
}

uint16_t pgb_page_checksum(const uint8_t *page, uint32_t page_size, uint32_t block_no)
{
#if defined(__x86_64__)
    if (pgb_page_checksum_avx2())
        return checksum_avx2(page, page_size, block_no);
#endif
    return checksum_baseline(page, page_size, block_no);
}

static int page_all_zero(const uint8_t *page, uint32_t page_size)
{
    const uint64_t *q = (const uint64_t *)page;
    for (uint32_t i = 0; i < page_size / 8; i++)
        if (q[i] != 0)
            return 0;
    return 1;
}

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint16_t rd16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/*
 * Verify page_count pages starting at block first_block. A page is valid when:
 *   - it is new (pd_upper == 0) and entirely zero, or
 *   - its LSN is at or past lsn_limit (being written during the backup; WAL
 *     replay will rewrite it, so its checksum proves nothing), or
 *   - its stored checksum equals the computed one.
 * Invalid page indexes (relative to the buffer) are written to bad[] up to
 * bad_cap; the return value is the total number of invalid pages.
 */
uint32_t pgb_page_verify(const uint8_t *buf, uint32_t page_count, uint32_t page_size, uint32_t first_block,
                         uint64_t lsn_limit, uint32_t *bad, uint32_t bad_cap)
{
    uint32_t n_bad = 0;

    for (uint32_t i = 0; i < page_count; i++) {
        const uint8_t *page = buf + (size_t)i * page_size;

        if (rd16(page + PD_UPPER) == 0) {
            if (page_all_zero(page, page_size))
                continue;
        } else {
            uint64_t lsn = ((uint64_t)rd32(page + PD_LSN_HI) << 32) | rd32(page + PD_LSN_LO);
            if (lsn >= lsn_limit)
                continue;
            if (pgb_page_checksum(page, page_size, first_block + i) == rd16(page + PD_CHECKSUM))
                continue;
        }

        if (n_bad < bad_cap)
            bad[n_bad] = i;
        n_bad++;
    }

    return n_bad;
}

/* ---- CRC-32C ------------------------------------------------------------ */

static uint32_t crc_table[8][256];
static int crc_table_ready = 0;

static void crc_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
    crc_table_ready = 1;
}

static uint32_t crc32c_table(uint32_t crc, const uint8_t *p, size_t len)
{
    if (!crc_table_ready)
        crc_table_init();
    while (len >= 8) {
        uint32_t lo = rd32(p) ^ crc;
        uint32_t hi = rd32(p + 4);
        crc = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^ crc_table[5][(lo >> 16) & 0xFF] ^
              crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xFF] ^ crc_table[2][(hi >> 8) & 0xFF] ^
              crc_table[1][(hi >> 16) & 0xFF] ^ crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xFF];
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    crc = (uint32_t)c;
    while (len--)
        crc = __builtin_ia32_crc32qi(crc, *p++);
    return crc;
}
#endif

static int use_hw = -1;

int pgb_crc32c_hardware(void)
{
    if (use_hw < 0) {
#if defined(__x86_64__)
        __builtin_cpu_init();
        use_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
        use_hw = 0;
#endif
    }
    return use_hw;
}

/* Force the table path (tests compare both implementations). */
void pgb_crc32c_force_table(int force)
{
    use_hw = force ? 0 : -1;
}

/* Standard CRC-32C: init 0xFFFFFFFF, final xor 0xFFFFFFFF, chainable through crc. */
uint32_t pgb_crc32c(uint32_t crc, const uint8_t *p, size_t len)
{
    crc = ~crc;
#if defined(__x86_64__)
    if (pgb_crc32c_hardware())
        return ~crc32c_sse42(crc, p, len);
#endif
    return ~crc32c_table(crc, p, len);
}

/*
 * XXH3-128 of each block_size block of buf (the last one may be short), the first checksum_size
 * bytes of each hash's canonical (big-endian high then low 64 bits) form written one after the
 * other to out: the block checksums of pgBackRest's block incremental maps. libxxhash is opened on
 * first use (only block incremental needs it). Returns the number of blocks, or -1 when the library
 * or its symbol is missing.
 */
typedef struct { uint64_t low64, high64; } xxh128_hash;
typedef xxh128_hash (*xxh3_128_fn)(const void *data, size_t len);
static xxh3_128_fn xxh3_128;

int64_t pgb_xxh128_blocks(const uint8_t *buf, uint64_t len, uint32_t block_size, uint32_t checksum_size, uint8_t *out)
{
    if (xxh3_128 == NULL) {
        void *lib = dlopen("libxxhash.so.0", RTLD_NOW | RTLD_LOCAL);
        if (lib == NULL) return -1;
        xxh3_128 = (xxh3_128_fn)dlsym(lib, "XXH3_128bits");
        if (xxh3_128 == NULL) return -1;
    }
    if (block_size == 0 || checksum_size > 16) return -1;
    int64_t n = 0;
    for (uint64_t at = 0; at < len; at += block_size, n++) {
        uint64_t take = len - at < block_size ? len - at : block_size;
        xxh128_hash h = xxh3_128(buf + at, (size_t)take);
        uint8_t canon[16];
        for (int i = 0; i < 8; i++) {
            canon[i] = (uint8_t)(h.high64 >> (56 - 8 * i));
            canon[8 + i] = (uint8_t)(h.low64 >> (56 - 8 * i));
        }
        memcpy(out + (size_t)n * checksum_size, canon, checksum_size);
    }
    return n;
}

/*
 * XXH32 (the lz4 frame format's content checksum), streaming. liblz4 computes it too, but the
 * distribution's build lets the compiler vectorise it for baseline x86-64 (SSE2), which has no
 * 32-bit vector multiply: measured at ~1.4 GB/s, 28% of an lz4 level-1 compression's CPU. This is
 * the plain four-lane scalar loop (~2 bytes per cycle); the empty asm keeps the compiler from
 * making the same vectorisation here. lz4.ts asks liblz4 for frames without the checksum and adds
 * it itself, so the frame is byte for byte what liblz4 writes with the checksum on.
 */
#define XXH_P1 0x9E3779B1u
#define XXH_P2 0x85EBCA77u
#define XXH_P3 0xC2B2AE3Du
#define XXH_P4 0x27D4EB2Fu
#define XXH_P5 0x165667B1u

static inline uint32_t rotl32(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

static inline uint32_t xxh32_round(uint32_t acc, uint32_t lane)
{
    acc += lane * XXH_P2;
    acc = rotl32(acc, 13);
    acc *= XXH_P1;
#if defined(__GNUC__)
    __asm__("" : "+r"(acc));
#endif
    return acc;
}

void pgb_xxh32_reset(pgb_xxh32 *s, uint32_t seed)
{
    memset(s, 0, sizeof *s);
    s->v[0] = seed + XXH_P1 + XXH_P2;
    s->v[1] = seed + XXH_P2;
    s->v[2] = seed;
    s->v[3] = seed - XXH_P1;
    s->seed = seed;
}

void pgb_xxh32_update(pgb_xxh32 *s, const uint8_t *p, uint64_t len)
{
    s->total += len;
    if (s->memsize + len < 16) {
        memcpy(s->mem + s->memsize, p, (size_t)len);
        s->memsize += (uint32_t)len;
        return;
    }
    if (s->memsize > 0) {
        uint32_t fill = 16 - s->memsize;
        memcpy(s->mem + s->memsize, p, fill);
        for (int i = 0; i < 4; i++)
            s->v[i] = xxh32_round(s->v[i], rd32(s->mem + 4 * i));
        p += fill;
        len -= fill;
        s->memsize = 0;
    }
    uint32_t v0 = s->v[0], v1 = s->v[1], v2 = s->v[2], v3 = s->v[3];
    while (len >= 16) {
        v0 = xxh32_round(v0, rd32(p));
        v1 = xxh32_round(v1, rd32(p + 4));
        v2 = xxh32_round(v2, rd32(p + 8));
        v3 = xxh32_round(v3, rd32(p + 12));
        p += 16;
        len -= 16;
    }
    s->v[0] = v0, s->v[1] = v1, s->v[2] = v2, s->v[3] = v3;
    memcpy(s->mem, p, (size_t)len);
    s->memsize = (uint32_t)len;
}

uint32_t pgb_xxh32_digest(const pgb_xxh32 *s)
{
    uint32_t h = s->total >= 16
        ? rotl32(s->v[0], 1) + rotl32(s->v[1], 7) + rotl32(s->v[2], 12) + rotl32(s->v[3], 18)
        : s->seed + XXH_P5;
    h += (uint32_t)s->total;
    const uint8_t *p = s->mem;
    uint32_t n = s->memsize;
    for (; n >= 4; p += 4, n -= 4)
        h = rotl32(h + rd32(p) * XXH_P3, 17) * XXH_P4;
    for (; n > 0; p++, n--)
        h = rotl32(h + *p * XXH_P5, 11) * XXH_P1;
    h ^= h >> 15;
    h *= XXH_P2;
    h ^= h >> 13;
    h *= XXH_P3;
    h ^= h >> 16;
    return h;
}

uint32_t pgb_abi_version(void)
{
    return PGB_ABI_VERSION;
}

/*
 * Take an exclusive advisory lock (flock) on path, creating it. Returns the open descriptor, which
 * holds the lock until closed (or the process dies: a killed process never leaves a stale lock),
 * -EWOULDBLOCK when another process holds it, or another -errno.
 */
int pgb_lock_acquire(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/*
 * Flush every dirty page and inode of the file system that holds path (syncfs(2)): one call makes
 * a whole backup's files durable, instead of one fsync per file. Returns 0 or -errno.
 */
int pgb_syncfs(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = syncfs(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/*
 * Writer thread. One job at a time: submit waits for the previous job to finish, then hands over
 * the next, so the caller owns exactly two buffers (the one being written, the one it fills).
 * Writes are positional (pwrite), whole (short writes continue) and sticky on error: the first
 * -errno is returned by the next submit or wait, and submit takes no new job until wait reports it
 * (so a job never starts while an error is pending).
 * A file system that accepts O_DIRECT on the descriptor but refuses a direct write (EINVAL) gets
 * the write again through the page cache, with O_DIRECT cleared on the descriptor.
 */
struct pgb_writer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int busy;
    int err;
    int fd;
    const uint8_t *buf;
    uint64_t len;
    int64_t offset;
};

static int write_whole(int fd, const uint8_t *buf, uint64_t len, int64_t offset)
{
    int retried = 0;
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EINVAL && !retried) {
                int flags = fcntl(fd, F_GETFL);
                if (flags >= 0 && (flags & O_DIRECT) && fcntl(fd, F_SETFL, flags & ~O_DIRECT) == 0) {
                    retried = 1;
                    continue;
                }
            }
            return -errno;
        }
        if (n == 0)
            return -EIO;
        buf += n;
        len -= (uint64_t)n;
        offset += n;
    }
    return 0;
}

static void *writer_main(void *arg)
{
    pgb_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->busy)
            pthread_cond_wait(&w->cv, &w->mu);
        int fd = w->fd;
        const uint8_t *buf = w->buf;
        uint64_t len = w->len;
        int64_t offset = w->offset;
        pthread_mutex_unlock(&w->mu);
        int rc = write_whole(fd, buf, len, offset);
        pthread_mutex_lock(&w->mu);
        if (rc != 0 && w->err == 0)
            w->err = rc;
        w->busy = 0;
        pthread_cond_broadcast(&w->cv);
    }
    return NULL;
}

/* A writer with its thread started (it lives as long as the process), or NULL. */
pgb_writer *pgb_writer_new(void)
{
    pgb_writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    int rc = pthread_create(&t, &attr, writer_main, w);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        free(w);
        return NULL;
    }
    return w;
}

/* Wait for the previous job, then start writing len bytes of buf at offset. 0, or a pending -errno. */
int pgb_writer_submit(pgb_writer *w, int fd, const uint8_t *buf, uint64_t len, int64_t offset)
{
    pthread_mutex_lock(&w->mu);
    while (w->busy)
        pthread_cond_wait(&w->cv, &w->mu);
    int rc = w->err;
    if (rc == 0) {
        w->fd = fd;
        w->buf = buf;
        w->len = len;
        w->offset = offset;
        w->busy = 1;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Wait until the writer is idle; returns (and clears) the first error since the last wait. */
int pgb_writer_wait(pgb_writer *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->busy)
        pthread_cond_wait(&w->cv, &w->mu);
    int rc = w->err;
    w->err = 0;
    pthread_mutex_unlock(&w->mu);
    return rc;
}
