/* libpgbunker: page checksums and CRC-32C for pgbunker (called through bun:ffi). */
#ifndef PGBUNKER_H
#define PGBUNKER_H

#include <stddef.h>
#include <stdint.h>

/* Bumped whenever a signature below changes; src/native/helper.ts checks it. */
#define PGB_ABI_VERSION 6

uint32_t pgb_abi_version(void);
uint16_t pgb_page_checksum(const uint8_t *page, uint32_t page_size, uint32_t block_no);
int pgb_page_checksum_avx2(void);
void pgb_page_checksum_force_baseline(int force);
uint32_t pgb_page_verify(const uint8_t *buf, uint32_t page_count, uint32_t page_size, uint32_t first_block,
                         uint64_t lsn_limit, uint32_t *bad, uint32_t bad_cap);
uint32_t pgb_crc32c(uint32_t crc, const uint8_t *p, size_t len);
int pgb_crc32c_hardware(void);
void pgb_crc32c_force_table(int force);
int pgb_lock_acquire(const char *path);
int pgb_syncfs(const char *path);
/* Streaming XXH32; 48 bytes, 8-aligned (the caller may allocate it). */
typedef struct {
    uint32_t v[4];
    uint8_t mem[16];
    uint64_t total;
    uint32_t memsize;
    uint32_t seed;
} pgb_xxh32;
void pgb_xxh32_reset(pgb_xxh32 *s, uint32_t seed);
void pgb_xxh32_update(pgb_xxh32 *s, const uint8_t *p, uint64_t len);
uint32_t pgb_xxh32_digest(const pgb_xxh32 *s);
int64_t pgb_xxh128_blocks(const uint8_t *buf, uint64_t len, uint32_t block_size, uint32_t checksum_size, uint8_t *out);

/* A background thread that writes one buffer at a time while the caller fills the next. */
typedef struct pgb_writer pgb_writer;
pgb_writer *pgb_writer_new(void);
int pgb_writer_submit(pgb_writer *w, int fd, const uint8_t *buf, uint64_t len, int64_t offset);
int pgb_writer_wait(pgb_writer *w);

#endif
