/* check_io.c - the io suite: DEFLATE and gzip decoding, IDX files, MNIST
 * loading and the mini-batch iterator.
 *
 * The reference streams below were made with CPython's zlib (zlib 1.2.13) by
 * this script, so the decoder is checked against an independent encoder:
 *
 *   def raw(data, level=9, strategy=zlib.Z_DEFAULT_STRATEGY):
 *       c = zlib.compressobj(level, zlib.DEFLATED, -15, 9, strategy)
 *       return c.compress(data) + c.flush()
 *   def gz(data, name=None):   # gzip.GzipFile(filename=name or '', mtime=0)
 *   stored   = raw(STORED_TEXT, 0)                  # block type 0
 *   fixed    = raw(FIXED_TEXT, 9, zlib.Z_FIXED)     # block type 1
 *   dynamic  = raw(lcg_text(7, 400))                # block type 2
 *   empty    = raw(b"")
 *   longdist = raw(lcg_bytes(1, 1000) + b"0123456" * 4430 + lcg_bytes(1, 1000))
 *              # its last match reaches back 32010 bytes (the window is 32768)
 *   gz_fname   = gz(b"hello gzip\n" * 3, "hello.txt")      # FNAME set
 *   gz_two     = gz(b"first member\n") + gz(b"second member\n")
 *   gz_dynamic = gz(lcg_text(7, 400))
 * lcg_bytes / lcg_text are reproduced in C below so the expected output need
 * not be embedded. Crafted invalid streams are built with a small bit writer.
 */
#define _POSIX_C_SOURCE 200809L /* mkfifo, mkdir, truncate: non-regular and huge files */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_internal.h"
#include "tapegrad/tapegrad.h"
#include "tg_check.h"

#ifndef TG_TEST_DATA_DIR
#error "TG_TEST_DATA_DIR must point at examples/data/mnist-10k (set in tests/meson.build)"
#endif
#ifndef TG_TEST_BUILD_DIR
#error "TG_TEST_BUILD_DIR must name a writable scratch directory (set in tests/meson.build)"
#endif

/* ---- reference data ----------------------------------------------------- */

static const uint8_t vec_stored[60] = {
    0x01, 0x37, 0x00, 0xc8, 0xff, 0x53, 0x74, 0x6f, 0x72, 0x65, 0x64, 0x20, 0x62, 0x6c, 0x6f, 0x63,
    0x6b, 0x20, 0x74, 0x65, 0x73, 0x74, 0x3a, 0x20, 0x6c, 0x65, 0x76, 0x65, 0x6c, 0x20, 0x30, 0x20,
    0x6b, 0x65, 0x65, 0x70, 0x73, 0x20, 0x74, 0x68, 0x65, 0x73, 0x65, 0x20, 0x62, 0x79, 0x74, 0x65,
    0x73, 0x20, 0x76, 0x65, 0x72, 0x62, 0x61, 0x74, 0x69, 0x6d, 0x2e, 0x0a,
};
static const uint8_t vec_fixed[30] = {
    0x73, 0xcb, 0xac, 0x48, 0x4d, 0x51, 0xf0, 0x28, 0x4d, 0x4b, 0xcb, 0x4d, 0xcc, 0xb3, 0x52, 0x48,
    0x4c, 0x4a, 0x86, 0x23, 0x85, 0x8c, 0xd4, 0x9c, 0x9c, 0x7c, 0x64, 0x52, 0x11, 0x00,
};
static const uint8_t vec_dynamic[512] = {
    0x6d, 0x55, 0xd1, 0x8e, 0xc2, 0x30, 0x0c, 0x7b, 0xef, 0x57, 0xf4, 0xd7, 0x02, 0xec, 0x18, 0x3a,
    0xb8, 0x21, 0x36, 0xc4, 0xef, 0x5f, 0xeb, 0xa4, 0x89, 0xb3, 0x21, 0xdd, 0x4d, 0x5b, 0x9b, 0xc4,
    0xb1, 0xeb, 0x86, 0x4d, 0x9e, 0x53, 0xfd, 0x4c, 0xb7, 0xeb, 0xbc, 0xd5, 0xe9, 0xb9, 0x9c, 0xe7,
    0x5a, 0xea, 0xf5, 0x25, 0x97, 0xba, 0xcd, 0x53, 0xbd, 0x2f, 0xeb, 0x5a, 0x1f, 0xb2, 0x3d, 0xde,
    0xf7, 0x7a, 0xba, 0xc9, 0x5a, 0x4f, 0x72, 0xfe, 0xfd, 0xc8, 0xeb, 0xa2, 0x3b, 0x5b, 0xcf, 0xd5,
    0xa4, 0xf5, 0xfd, 0x88, 0xcd, 0x9e, 0x8a, 0x1a, 0xaf, 0xe9, 0xfe, 0xc6, 0x96, 0x0c, 0x08, 0xaf,
    0x8a, 0xad, 0xd2, 0x72, 0xb6, 0x96, 0xad, 0xd5, 0xda, 0x56, 0x8f, 0xd5, 0x82, 0xc8, 0x17, 0x85,
    0xc0, 0xc3, 0xda, 0xe8, 0x51, 0x52, 0x97, 0x9f, 0xf6, 0xb0, 0x8e, 0xb6, 0x11, 0x8d, 0x30, 0xbc,
    0x45, 0x4f, 0x80, 0x69, 0xd1, 0x06, 0x4f, 0xbb, 0xa3, 0xa1, 0xe9, 0x6f, 0x5d, 0x5e, 0x9a, 0x2b,
    0x5a, 0x19, 0x39, 0xfd, 0xbd, 0x17, 0x40, 0x86, 0xc5, 0x3a, 0x41, 0xad, 0x10, 0xbd, 0x25, 0xfd,
    0xb0, 0xa2, 0x6d, 0x51, 0xcf, 0x16, 0x52, 0x8c, 0x40, 0x92, 0xda, 0xeb, 0x5a, 0x3c, 0xe4, 0xf0,
    0xc5, 0xd0, 0x44, 0x01, 0xb5, 0x61, 0x19, 0x2f, 0x43, 0xc3, 0x84, 0xb8, 0x3f, 0x1e, 0x8b, 0xd5,
    0x0f, 0x8b, 0x71, 0x52, 0x3d, 0xaf, 0xd1, 0x6e, 0x7f, 0xb6, 0x03, 0x01, 0x58, 0x31, 0xef, 0xa5,
    0x10, 0xe9, 0x4e, 0xa4, 0xe5, 0xf4, 0xf6, 0x18, 0xb5, 0x64, 0x2f, 0x64, 0x2e, 0x43, 0x10, 0x6d,
    0xc7, 0x97, 0x01, 0x48, 0x62, 0xe1, 0xdb, 0x1b, 0x13, 0x2d, 0x82, 0x37, 0x65, 0x10, 0x4e, 0x23,
    0x8a, 0x87, 0x83, 0x48, 0xa6, 0xc3, 0x76, 0x2b, 0x01, 0x3e, 0x06, 0x55, 0xd8, 0x6b, 0xaa, 0xc0,
    0xa8, 0xdf, 0xa1, 0xcd, 0x07, 0xea, 0x5f, 0x7c, 0xa8, 0xac, 0xac, 0x65, 0x18, 0x8f, 0xda, 0xd7,
    0x2d, 0x7e, 0x5a, 0x23, 0x0d, 0xa0, 0x24, 0xb2, 0xc9, 0x31, 0x2c, 0x86, 0x7f, 0x21, 0x05, 0x04,
    0xda, 0x7f, 0x19, 0xe0, 0x88, 0x71, 0x03, 0x38, 0x3f, 0x5b, 0x21, 0xc7, 0xe8, 0x82, 0xc1, 0x8b,
    0x17, 0x22, 0x61, 0x18, 0x29, 0x59, 0x82, 0x3d, 0x07, 0xec, 0xe0, 0x8a, 0xbc, 0x7e, 0xfb, 0x4a,
    0x68, 0x26, 0x51, 0x49, 0x7c, 0x09, 0x29, 0x50, 0x2d, 0xe6, 0xc1, 0xde, 0x9b, 0x74, 0x83, 0xc7,
    0xa5, 0xe3, 0x91, 0x63, 0x14, 0xd4, 0x87, 0xb8, 0xf1, 0x58, 0x9d, 0x9d, 0xad, 0x05, 0x8f, 0xb3,
    0xcd, 0xf2, 0x39, 0x73, 0x31, 0xf6, 0x8a, 0x69, 0xd3, 0x47, 0xcd, 0xd9, 0xeb, 0x0d, 0x44, 0xbe,
    0x74, 0x66, 0x76, 0xc4, 0xb2, 0x6d, 0x88, 0xa9, 0xb5, 0xd0, 0xb0, 0xe3, 0x30, 0x6c, 0xa0, 0xb0,
    0xb4, 0x5a, 0xed, 0x4b, 0x56, 0x72, 0x87, 0x90, 0xf7, 0x7b, 0x4f, 0x3b, 0xdd, 0xc6, 0xe1, 0x90,
    0x28, 0x71, 0x64, 0x76, 0x11, 0xf3, 0xd8, 0x89, 0x41, 0xe4, 0x07, 0xe6, 0x37, 0xc8, 0x95, 0x04,
    0x4a, 0xcf, 0xf5, 0xa9, 0xbd, 0x1f, 0x73, 0x36, 0x97, 0xa3, 0x12, 0x5f, 0x83, 0x34, 0xf4, 0x23,
    0x04, 0x1d, 0x13, 0x94, 0x1c, 0x4c, 0xaa, 0xb1, 0x92, 0x5b, 0x4e, 0x03, 0xaa, 0x7c, 0x89, 0x8f,
    0x46, 0x1a, 0x63, 0xc7, 0xe6, 0xd3, 0x19, 0x54, 0x0a, 0x49, 0xa7, 0x33, 0x69, 0x9c, 0x8c, 0x6b,
    0x87, 0xce, 0x58, 0x56, 0xbe, 0x56, 0x56, 0x0e, 0x45, 0x80, 0xda, 0x03, 0x4c, 0xe6, 0x42, 0xe1,
    0x81, 0x72, 0xb8, 0xb8, 0x61, 0x2f, 0xfe, 0x95, 0x39, 0xdc, 0x49, 0x32, 0x38, 0x71, 0xe0, 0xf1,
    0x11, 0xf7, 0x66, 0x3f, 0x8e, 0xd9, 0x19, 0x3c, 0xe6, 0xec, 0x24, 0xe0, 0x00, 0x62, 0xf9, 0x0f,
};
static const uint8_t vec_empty[2] = {
    0x03, 0x00,
};
static const uint8_t vec_longdist[1184] = {
    0xed, 0xdd, 0xfd, 0x3b, 0x14, 0x06, 0x00, 0x07, 0xf0, 0x23, 0xba, 0x64, 0x76, 0x65, 0xce, 0x46,
    0x57, 0x9b, 0x4a, 0x38, 0xca, 0x51, 0xcb, 0x33, 0x09, 0xeb, 0x8a, 0x4a, 0x5e, 0x8b, 0x8e, 0x64,
    0x5e, 0xc2, 0x91, 0x97, 0x54, 0x4b, 0xd2, 0x85, 0xa4, 0xb1, 0x2c, 0x94, 0x77, 0x0e, 0x75, 0xeb,
    0x74, 0xa7, 0xbc, 0x0d, 0x57, 0xba, 0x72, 0x6c, 0x42, 0xb8, 0x5c, 0xde, 0x4a, 0xca, 0xa4, 0xf2,
    0x90, 0xc7, 0xbc, 0xcc, 0x70, 0x77, 0xdc, 0xfe, 0x86, 0xfd, 0xba, 0xe7, 0xfb, 0xd3, 0xe7, 0xcf,
    0xf8, 0x58, 0xf9, 0x24, 0xd4, 0x7c, 0xe6, 0xf3, 0xf4, 0xba, 0x0a, 0xc7, 0x36, 0x2c, 0xa7, 0xcf,
    0x4a, 0x36, 0x78, 0xb8, 0x3c, 0xd9, 0x42, 0x57, 0xd3, 0x55, 0xaf, 0x36, 0xcb, 0x8f, 0x2e, 0x9a,
    0xdc, 0xea, 0x2e, 0x0b, 0x48, 0x8d, 0x5e, 0xfe, 0xb3, 0x6e, 0x6e, 0xd1, 0xe0, 0x87, 0x0a, 0xa3,
    0x4b, 0x26, 0x39, 0x43, 0x47, 0x54, 0x66, 0x77, 0xf5, 0xac, 0xf4, 0x57, 0x67, 0xe8, 0x3d, 0x67,
    0xea, 0x17, 0xb6, 0x4f, 0x2a, 0x13, 0x15, 0x9d, 0x67, 0x4f, 0x94, 0xcd, 0x3f, 0x62, 0x85, 0xea,
    0x7f, 0x6c, 0xb8, 0x9d, 0x99, 0xa2, 0x71, 0x32, 0x7d, 0xc6, 0xe3, 0xa9, 0xdd, 0xd8, 0x54, 0x44,
    0x84, 0x97, 0x2a, 0xaf, 0x21, 0x2a, 0xae, 0x7f, 0x3f, 0xc1, 0x93, 0xa7, 0xe5, 0x60, 0x61, 0xdd,
    0x1c, 0xcf, 0xbe, 0x29, 0xbb, 0x70, 0x48, 0xfe, 0xa0, 0xe4, 0x4c, 0xde, 0x86, 0xa9, 0x6e, 0x65,
    0xb3, 0x34, 0x95, 0xb4, 0x98, 0xb3, 0x51, 0x2a, 0xe5, 0xb3, 0xc2, 0x04, 0xb1, 0x27, 0x67, 0xfe,
    0x50, 0x4b, 0x56, 0xe6, 0xa6, 0x95, 0xe9, 0x7d, 0x5a, 0xab, 0xe7, 0xbe, 0x73, 0x73, 0x88, 0x14,
    0x1d, 0xd9, 0xad, 0x5b, 0x75, 0x2f, 0xe9, 0xa2, 0xff, 0x8a, 0xdf, 0xc8, 0x6f, 0xb8, 0x85, 0xb1,
    0x35, 0xbb, 0xcb, 0x3d, 0xfd, 0xd9, 0x8d, 0x1d, 0xf2, 0x0e, 0xa7, 0x97, 0x3a, 0x5c, 0x35, 0x4d,
    0xda, 0x13, 0x27, 0x7e, 0x7f, 0x68, 0x4f, 0x50, 0x31, 0x29, 0xc7, 0xf5, 0xc2, 0xd7, 0x04, 0xca,
    0x68, 0x40, 0x5e, 0xbc, 0x53, 0xdc, 0xac, 0xb6, 0x5d, 0x1b, 0xeb, 0x42, 0xc3, 0xdb, 0xa8, 0x32,
    0x5a, 0xfe, 0xc6, 0x65, 0x6f, 0xc7, 0xef, 0xbf, 0xda, 0xe5, 0x3b, 0xd1, 0x64, 0xd8, 0xc4, 0x49,
    0xf1, 0x6c, 0x0b, 0x48, 0xb4, 0xf1, 0xcb, 0x2b, 0xf3, 0x7f, 0x50, 0x52, 0xfc, 0xb4, 0x45, 0x26,
    0x9e, 0x39, 0xfa, 0x8b, 0xad, 0x69, 0xa4, 0x7f, 0xd1, 0x75, 0xfa, 0xec, 0xfa, 0x76, 0x4a, 0x3f,
    0x73, 0x73, 0x13, 0xa3, 0xe9, 0xbe, 0xbf, 0xdf, 0xe8, 0x73, 0x8d, 0x8a, 0x88, 0x41, 0x53, 0xf7,
    0x6a, 0x29, 0xaf, 0x37, 0xb1, 0x27, 0xf2, 0x32, 0xb5, 0x49, 0x3c, 0x14, 0x7b, 0xfc, 0xb1, 0xbe,
    0x92, 0x60, 0xd8, 0x92, 0x75, 0x77, 0x53, 0x85, 0xf3, 0x3b, 0x79, 0xfe, 0x99, 0xe6, 0xd1, 0xe3,
    0x3b, 0xf4, 0x92, 0xea, 0x1e, 0x9e, 0x38, 0x5d, 0x44, 0xea, 0x7d, 0xf5, 0xca, 0x6b, 0xdc, 0xd2,
    0x8e, 0xde, 0xa7, 0x64, 0x33, 0xd8, 0xd5, 0xc6, 0x4e, 0x6e, 0x4a, 0xa0, 0xb3, 0x3d, 0x5a, 0x8c,
    0xbb, 0xb3, 0x0d, 0x7d, 0x85, 0x29, 0x1b, 0x98, 0x2d, 0x79, 0x8a, 0xe5, 0x82, 0x9b, 0x26, 0xc6,
    0xa2, 0x1c, 0x6b, 0xd2, 0x98, 0x97, 0x62, 0xce, 0xe7, 0x24, 0x23, 0xde, 0x3a, 0x96, 0x47, 0xac,
    0xee, 0x27, 0x9d, 0xb3, 0xbf, 0x52, 0x62, 0xf7, 0x57, 0x4d, 0x89, 0x4f, 0x62, 0xea, 0xb6, 0xb9,
    0xfb, 0xc1, 0xd2, 0xd6, 0x1b, 0x9a, 0xd3, 0x16, 0xa2, 0x72, 0xd5, 0x75, 0x24, 0xf3, 0xb0, 0xf0,
    0x02, 0xa1, 0x82, 0x24, 0x35, 0x2c, 0x75, 0xb3, 0xbf, 0x35, 0xbc, 0x24, 0xdc, 0xf0, 0x4e, 0xf6,
    0x7e, 0xc5, 0x4b, 0x39, 0xff, 0x88, 0x6b, 0x6e, 0x83, 0x69, 0x67, 0x0f, 0x35, 0x6d, 0xfa, 0xf3,
    0x85, 0x70, 0x85, 0xe0, 0xd8, 0x60, 0x90, 0x57, 0xcd, 0x7d, 0x7e, 0xb7, 0x1b, 0xf7, 0x53, 0xdb,
    0x48, 0xfc, 0xef, 0x95, 0x1f, 0x35, 0xdd, 0x09, 0x99, 0xc1, 0xf5, 0xde, 0xa4, 0x3a, 0xbd, 0xae,
    0x81, 0x60, 0x46, 0xb8, 0x84, 0x9d, 0x35, 0x64, 0x23, 0x2d, 0x15, 0x0b, 0x32, 0x67, 0xd7, 0x77,
    0xec, 0x1d, 0x3d, 0x3e, 0x2c, 0xa9, 0x53, 0xcb, 0x2d, 0xc9, 0xf7, 0xba, 0xfd, 0xfe, 0x43, 0xc7,
    0xec, 0xc5, 0x82, 0x3b, 0x3c, 0xe9, 0x29, 0x1d, 0x72, 0xbc, 0xbd, 0x58, 0x14, 0xce, 0xfd, 0x74,
    0x62, 0x75, 0xed, 0xb4, 0xce, 0xbd, 0x6a, 0x55, 0x07, 0xb9, 0x82, 0x69, 0x14, 0x6c, 0xec, 0x58,
    0xd8, 0x95, 0x6f, 0xa7, 0xa9, 0x5d, 0x37, 0x75, 0x95, 0xd8, 0xc0, 0x2d, 0x7d, 0x56, 0xcb, 0x20,
    0x8f, 0x8c, 0x88, 0xa7, 0x9d, 0xd5, 0xe7, 0x5d, 0x22, 0x6d, 0xc9, 0xce, 0xb7, 0x46, 0xfb, 0x24,
    0x6f, 0xc2, 0xcb, 0x36, 0xf2, 0xf8, 0xca, 0x44, 0x53, 0xe2, 0x37, 0x6a, 0x47, 0x7b, 0x1a, 0x27,
    0x69, 0x21, 0xad, 0x15, 0xcb, 0xaa, 0xd9, 0x61, 0xa2, 0x73, 0x23, 0x9b, 0xd5, 0x48, 0xba, 0xe6,
    0xa7, 0x22, 0x7e, 0xed, 0x22, 0x68, 0xdd, 0x36, 0x0b, 0x79, 0xbd, 0x30, 0xda, 0xfb, 0xa8, 0xa6,
    0xf8, 0x6e, 0x92, 0xd1, 0xc5, 0xd4, 0x50, 0x97, 0x6b, 0xa9, 0x71, 0x07, 0x28, 0xd4, 0x42, 0x15,
    0x65, 0xfe, 0xee, 0xb3, 0x8b, 0x8b, 0xb6, 0xbd, 0x8d, 0xb2, 0xfa, 0xb7, 0x5c, 0x1d, 0x83, 0xbf,
    0xe3, 0x3c, 0x05, 0xe5, 0xcc, 0xc0, 0x64, 0xba, 0x90, 0xbe, 0x5c, 0xa9, 0xc1, 0x49, 0xab, 0x34,
    0x24, 0x08, 0xbb, 0xbd, 0x57, 0x2d, 0x79, 0xe4, 0x12, 0xc6, 0xa2, 0xd7, 0xa8, 0xbf, 0x8a, 0xfe,
    0xa9, 0xb8, 0x39, 0x25, 0x30, 0xc9, 0x6c, 0xaf, 0x19, 0x95, 0x71, 0x7e, 0xfb, 0x96, 0xf1, 0x08,
    0xf3, 0x5d, 0x9a, 0x13, 0xc5, 0x3b, 0x8b, 0x33, 0xea, 0x83, 0xa2, 0xbc, 0xdc, 0xee, 0x66, 0x85,
    0x7a, 0x98, 0x0a, 0x7c, 0xf7, 0x5f, 0xaa, 0x1f, 0xd8, 0x73, 0x54, 0x30, 0xb3, 0x2d, 0xa6, 0xfa,
    0x0f, 0xc7, 0x98, 0x32, 0x9f, 0x83, 0x94, 0x25, 0x9e, 0xcb, 0x24, 0x85, 0xbc, 0xa4, 0xb4, 0xd9,
    0xc8, 0x84, 0xf4, 0xda, 0xa1, 0x33, 0x5a, 0xbe, 0x27, 0xe4, 0xe1, 0xea, 0x20, 0xc5, 0xf9, 0x99,
    0x50, 0x17, 0xe3, 0x9d, 0xd6, 0xad, 0x13, 0x67, 0x7e, 0xe4, 0xd2, 0x62, 0x0d, 0x89, 0x96, 0x6e,
    0x07, 0xa7, 0x0a, 0x1a, 0x5f, 0x66, 0x18, 0xb8, 0x87, 0xed, 0xd5, 0x50, 0xd6, 0x58, 0xb3, 0xb6,
    0xde, 0xa9, 0x92, 0x7c, 0x67, 0xed, 0xc9, 0x90, 0x21, 0x96, 0x69, 0xd6, 0x3b, 0x62, 0xdb, 0xb5,
    0xa9, 0x1b, 0x26, 0x97, 0x6d, 0x56, 0x7d, 0xf9, 0xb6, 0x54, 0x9a, 0x33, 0xae, 0xad, 0x4d, 0xb5,
    0x5f, 0x97, 0xf1, 0xb3, 0x2b, 0xad, 0x27, 0xe8, 0x53, 0x29, 0xe1, 0x92, 0x77, 0x88, 0xae, 0x82,
    0xfe, 0x42, 0xae, 0xd1, 0x12, 0xee, 0xd6, 0xcc, 0xf2, 0xb0, 0xdb, 0x2f, 0x88, 0xe3, 0xb0, 0x68,
    0x5b, 0xaf, 0x16, 0x39, 0xba, 0xfe, 0x23, 0xf1, 0xae, 0x9a, 0x3a, 0x94, 0x3d, 0xd1, 0xd0, 0x21,
    0x7a, 0x21, 0x08, 0x6c, 0xe4, 0xb3, 0x3f, 0xc4, 0x38, 0x1d, 0x0b, 0xa8, 0xb4, 0x6a, 0x67, 0xcf,
    0xab, 0x3d, 0x70, 0x69, 0x6b, 0x3d, 0xc6, 0xb7, 0x0e, 0x99, 0x89, 0x36, 0x52, 0xdf, 0x57, 0x1b,
    0xf3, 0xcc, 0x80, 0x4f, 0xc9, 0x3c, 0xc0, 0x7d, 0x23, 0x5d, 0x24, 0x7f, 0x20, 0xe5, 0x26, 0xbc,
    0x16, 0x8f, 0x70, 0x07, 0x72, 0x3d, 0xbb, 0x38, 0x4f, 0x7c, 0x97, 0x25, 0xd4, 0x69, 0xce, 0x5c,
    0xe1, 0xf0, 0x5c, 0xdf, 0x17, 0xfa, 0xba, 0xfb, 0x1c, 0x33, 0xab, 0x2d, 0x59, 0x6a, 0x57, 0xb6,
    0x15, 0x2d, 0x38, 0x8d, 0xaf, 0x7a, 0x4c, 0xdc, 0xae, 0x7f, 0x80, 0xa8, 0x7b, 0x5a, 0x36, 0x22,
    0xd9, 0x5a, 0xad, 0x4a, 0x77, 0x3e, 0x6f, 0xf1, 0x5e, 0x78, 0xb8, 0x8a, 0x29, 0x59, 0x13, 0xc8,
    0xb8, 0x45, 0xc9, 0xae, 0xe5, 0x34, 0x2f, 0x50, 0x6f, 0x46, 0x0e, 0x30, 0xc5, 0xe9, 0x5b, 0x68,
    0x66, 0xe6, 0xdb, 0x77, 0x7c, 0xbb, 0x13, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0xe0, 0x3f, 0x60, 0x85, 0x09, 0x1d, 0x13, 0x3a, 0x26, 0xf4, 0xff, 0xfd, 0x84, 0xfe, 0x2f,
};
static const uint8_t vec_gz_fname[44] = {
    0x1f, 0x8b, 0x08, 0x08, 0x00, 0x00, 0x00, 0x00, 0x02, 0xff, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x2e,
    0x74, 0x78, 0x74, 0x00, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57, 0x48, 0xaf, 0xca, 0x2c, 0xe0, 0xca,
    0xc0, 0xca, 0x04, 0x00, 0x3a, 0xa7, 0x68, 0xcc, 0x21, 0x00, 0x00, 0x00,
};
static const uint8_t vec_gz_two[67] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xff, 0x4b, 0xcb, 0x2c, 0x2a, 0x2e, 0x51,
    0xc8, 0x4d, 0xcd, 0x4d, 0x4a, 0x2d, 0xe2, 0x02, 0x00, 0xa7, 0xf4, 0x85, 0x0a, 0x0d, 0x00, 0x00,
    0x00, 0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xff, 0x2b, 0x4e, 0x4d, 0xce, 0xcf,
    0x4b, 0x51, 0xc8, 0x4d, 0xcd, 0x4d, 0x4a, 0x2d, 0xe2, 0x02, 0x00, 0x36, 0x18, 0x4b, 0x0e, 0x0e,
    0x00, 0x00, 0x00,
};
static const uint8_t vec_gz_dynamic[530] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xff, 0x6d, 0x55, 0xd1, 0x8e, 0xc2, 0x30,
    0x0c, 0x7b, 0xef, 0x57, 0xf4, 0xd7, 0x02, 0xec, 0x18, 0x3a, 0xb8, 0x21, 0x36, 0xc4, 0xef, 0x5f,
    0xeb, 0xa4, 0x89, 0xb3, 0x21, 0xdd, 0x4d, 0x5b, 0x9b, 0xc4, 0xb1, 0xeb, 0x86, 0x4d, 0x9e, 0x53,
    0xfd, 0x4c, 0xb7, 0xeb, 0xbc, 0xd5, 0xe9, 0xb9, 0x9c, 0xe7, 0x5a, 0xea, 0xf5, 0x25, 0x97, 0xba,
    0xcd, 0x53, 0xbd, 0x2f, 0xeb, 0x5a, 0x1f, 0xb2, 0x3d, 0xde, 0xf7, 0x7a, 0xba, 0xc9, 0x5a, 0x4f,
    0x72, 0xfe, 0xfd, 0xc8, 0xeb, 0xa2, 0x3b, 0x5b, 0xcf, 0xd5, 0xa4, 0xf5, 0xfd, 0x88, 0xcd, 0x9e,
    0x8a, 0x1a, 0xaf, 0xe9, 0xfe, 0xc6, 0x96, 0x0c, 0x08, 0xaf, 0x8a, 0xad, 0xd2, 0x72, 0xb6, 0x96,
    0xad, 0xd5, 0xda, 0x56, 0x8f, 0xd5, 0x82, 0xc8, 0x17, 0x85, 0xc0, 0xc3, 0xda, 0xe8, 0x51, 0x52,
    0x97, 0x9f, 0xf6, 0xb0, 0x8e, 0xb6, 0x11, 0x8d, 0x30, 0xbc, 0x45, 0x4f, 0x80, 0x69, 0xd1, 0x06,
    0x4f, 0xbb, 0xa3, 0xa1, 0xe9, 0x6f, 0x5d, 0x5e, 0x9a, 0x2b, 0x5a, 0x19, 0x39, 0xfd, 0xbd, 0x17,
    0x40, 0x86, 0xc5, 0x3a, 0x41, 0xad, 0x10, 0xbd, 0x25, 0xfd, 0xb0, 0xa2, 0x6d, 0x51, 0xcf, 0x16,
    0x52, 0x8c, 0x40, 0x92, 0xda, 0xeb, 0x5a, 0x3c, 0xe4, 0xf0, 0xc5, 0xd0, 0x44, 0x01, 0xb5, 0x61,
    0x19, 0x2f, 0x43, 0xc3, 0x84, 0xb8, 0x3f, 0x1e, 0x8b, 0xd5, 0x0f, 0x8b, 0x71, 0x52, 0x3d, 0xaf,
    0xd1, 0x6e, 0x7f, 0xb6, 0x03, 0x01, 0x58, 0x31, 0xef, 0xa5, 0x10, 0xe9, 0x4e, 0xa4, 0xe5, 0xf4,
    0xf6, 0x18, 0xb5, 0x64, 0x2f, 0x64, 0x2e, 0x43, 0x10, 0x6d, 0xc7, 0x97, 0x01, 0x48, 0x62, 0xe1,
    0xdb, 0x1b, 0x13, 0x2d, 0x82, 0x37, 0x65, 0x10, 0x4e, 0x23, 0x8a, 0x87, 0x83, 0x48, 0xa6, 0xc3,
    0x76, 0x2b, 0x01, 0x3e, 0x06, 0x55, 0xd8, 0x6b, 0xaa, 0xc0, 0xa8, 0xdf, 0xa1, 0xcd, 0x07, 0xea,
    0x5f, 0x7c, 0xa8, 0xac, 0xac, 0x65, 0x18, 0x8f, 0xda, 0xd7, 0x2d, 0x7e, 0x5a, 0x23, 0x0d, 0xa0,
    0x24, 0xb2, 0xc9, 0x31, 0x2c, 0x86, 0x7f, 0x21, 0x05, 0x04, 0xda, 0x7f, 0x19, 0xe0, 0x88, 0x71,
    0x03, 0x38, 0x3f, 0x5b, 0x21, 0xc7, 0xe8, 0x82, 0xc1, 0x8b, 0x17, 0x22, 0x61, 0x18, 0x29, 0x59,
    0x82, 0x3d, 0x07, 0xec, 0xe0, 0x8a, 0xbc, 0x7e, 0xfb, 0x4a, 0x68, 0x26, 0x51, 0x49, 0x7c, 0x09,
    0x29, 0x50, 0x2d, 0xe6, 0xc1, 0xde, 0x9b, 0x74, 0x83, 0xc7, 0xa5, 0xe3, 0x91, 0x63, 0x14, 0xd4,
    0x87, 0xb8, 0xf1, 0x58, 0x9d, 0x9d, 0xad, 0x05, 0x8f, 0xb3, 0xcd, 0xf2, 0x39, 0x73, 0x31, 0xf6,
    0x8a, 0x69, 0xd3, 0x47, 0xcd, 0xd9, 0xeb, 0x0d, 0x44, 0xbe, 0x74, 0x66, 0x76, 0xc4, 0xb2, 0x6d,
    0x88, 0xa9, 0xb5, 0xd0, 0xb0, 0xe3, 0x30, 0x6c, 0xa0, 0xb0, 0xb4, 0x5a, 0xed, 0x4b, 0x56, 0x72,
    0x87, 0x90, 0xf7, 0x7b, 0x4f, 0x3b, 0xdd, 0xc6, 0xe1, 0x90, 0x28, 0x71, 0x64, 0x76, 0x11, 0xf3,
    0xd8, 0x89, 0x41, 0xe4, 0x07, 0xe6, 0x37, 0xc8, 0x95, 0x04, 0x4a, 0xcf, 0xf5, 0xa9, 0xbd, 0x1f,
    0x73, 0x36, 0x97, 0xa3, 0x12, 0x5f, 0x83, 0x34, 0xf4, 0x23, 0x04, 0x1d, 0x13, 0x94, 0x1c, 0x4c,
    0xaa, 0xb1, 0x92, 0x5b, 0x4e, 0x03, 0xaa, 0x7c, 0x89, 0x8f, 0x46, 0x1a, 0x63, 0xc7, 0xe6, 0xd3,
    0x19, 0x54, 0x0a, 0x49, 0xa7, 0x33, 0x69, 0x9c, 0x8c, 0x6b, 0x87, 0xce, 0x58, 0x56, 0xbe, 0x56,
    0x56, 0x0e, 0x45, 0x80, 0xda, 0x03, 0x4c, 0xe6, 0x42, 0xe1, 0x81, 0x72, 0xb8, 0xb8, 0x61, 0x2f,
    0xfe, 0x95, 0x39, 0xdc, 0x49, 0x32, 0x38, 0x71, 0xe0, 0xf1, 0x11, 0xf7, 0x66, 0x3f, 0x8e, 0xd9,
    0x19, 0x3c, 0xe6, 0xec, 0x24, 0xe0, 0x00, 0x62, 0xf9, 0x0f, 0xa0, 0x58, 0x25, 0x32, 0xee, 0x07,
    0x00, 0x00,
};

static const char STORED_TEXT[] = "Stored block test: level 0 keeps these bytes verbatim.\n";
static const char FIXED_TEXT[] = "Fixed Huffman: abcabcabcabc hello hello hello!";

/* x = x * 1664525 + 1013904223 (mod 2^32); each byte is the top 8 bits. */
static void lcg_bytes(uint32_t seed, uint8_t *out, size_t n)
{
    uint32_t x = seed;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        out[i] = (uint8_t)(x >> 24);
    }
}

/* nwords words from a 16-word vocabulary, each followed by a space; returns
 * the length written (out must hold 10 * nwords bytes). */
static size_t lcg_text(uint32_t seed, int nwords, uint8_t *out)
{
    static const char *const vocab[16] = {"tape", "grad", "tensor", "backward", "the",
                                          "of",   "a",    "relu",   "matmul",   "loss",
                                          "weight", "bias", "epoch", "batch",   "\n",
                                          "sum"};
    uint32_t x = seed;
    size_t n = 0;
    for (int i = 0; i < nwords; i++) {
        x = x * 1664525u + 1013904223u;
        const char *w = vocab[(x >> 16) % 16];
        memcpy(out + n, w, strlen(w));
        n += strlen(w);
        out[n++] = ' ';
    }
    return n;
}

static uint8_t dyn_text[4000];
static size_t dyn_text_len;

static void make_dyn_text(void) { dyn_text_len = lcg_text(7, 400, dyn_text); }

/* Decodes with tg_inflate (gzip false) or tg_gunzip and compares with expect. */
static void check_decodes(bool gzip, const uint8_t *in, size_t n, const void *expect,
                          size_t expect_len)
{
    uint8_t *out = NULL;
    size_t len = 0;
    tg_status st = gzip ? tg_gunzip(in, n, &out, &len, 0) : tg_inflate(in, n, &out, &len, 0);
    ck_assert_msg(st == TG_OK, "decode failed: %s", tg_last_error());
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(len, expect_len);
    ck_assert(memcmp(out, expect, len) == 0);
    tg_buffer_free(out);
}

/* ---- a bit writer for crafted streams ---------------------------------- */

typedef struct bitw {
    uint8_t buf[512];
    size_t len; /* bytes started */
    unsigned bit; /* bits used in the last byte (0..7) */
} bitw;

/* v's n low bits, LSB first, as DEFLATE packs header fields and extra bits. */
static void put(bitw *w, unsigned v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (w->bit == 0)
            w->buf[w->len++] = 0;
        w->buf[w->len - 1] |= (uint8_t)(((v >> i) & 1) << w->bit);
        w->bit = (w->bit + 1) & 7;
    }
}

/* A Huffman code of n bits, sent MSB first. */
static void put_code(bitw *w, unsigned code, unsigned n)
{
    for (unsigned i = n; i-- > 0;)
        put(w, (code >> i) & 1, 1);
}

/* A literal/length symbol in the fixed code of RFC 1951 section 3.2.6. */
static void put_fixed_lit(bitw *w, unsigned sym)
{
    if (sym < 144)
        put_code(w, 0x30 + sym, 8);
    else if (sym < 256)
        put_code(w, 0x190 + sym - 144, 9);
    else if (sym < 280)
        put_code(w, sym - 256, 7);
    else
        put_code(w, 0xc0 + sym - 280, 8);
}

/* The code-length code lengths of a dynamic header, 3 bits each in the RFC's
 * order, for the symbols listed in lens19 (indexed by symbol). */
static void put_clen_lengths(bitw *w, const uint8_t lens19[19], unsigned nclen)
{
    static const uint8_t order[19] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                      11, 4,  12, 3, 13, 2, 14, 1, 15};
    for (unsigned i = 0; i < nclen; i++)
        put(w, lens19[order[i]], 3);
}

/* Stored blocks (at most 65535 bytes each) holding data; returns the size. */
static size_t make_stored(uint8_t *dst, const uint8_t *data, size_t n)
{
    size_t pos = 0;
    do {
        size_t k = n > 65535 ? 65535 : n;
        dst[pos++] = n == k; // BFINAL in bit 0, BTYPE 00, then padding to the byte
        dst[pos++] = (uint8_t)k;
        dst[pos++] = (uint8_t)(k >> 8);
        dst[pos++] = (uint8_t)~k;
        dst[pos++] = (uint8_t)(~k >> 8);
        memcpy(dst + pos, data, k);
        pos += k;
        data += k;
        n -= k;
    } while (n > 0);
    return pos;
}

enum { GZ_FHCRC = 2, GZ_FEXTRA = 4, GZ_FNAME = 8, GZ_FCOMMENT = 16 };

/* A gzip member around a raw deflate stream, with optional header fields. */
static size_t make_gzip(uint8_t *dst, unsigned flags, const uint8_t *deflate, size_t dlen,
                        const uint8_t *plain, size_t plen)
{
    static const uint8_t head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    size_t pos = 10;
    memcpy(dst, head, 10);
    dst[3] = (uint8_t)flags;
    if (flags & GZ_FEXTRA) {
        static const uint8_t extra[8] = {6, 0, 'A', 'p', 2, 0, 0x00, 0x01}; // one subfield
        memcpy(dst + pos, extra, 8);
        pos += 8;
    }
    if (flags & GZ_FNAME) {
        memcpy(dst + pos, "data.bin", 9);
        pos += 9;
    }
    if (flags & GZ_FCOMMENT) {
        memcpy(dst + pos, "a comment", 10);
        pos += 10;
    }
    if (flags & GZ_FHCRC) {
        uint32_t c = tg__crc32(0, dst, pos);
        dst[pos++] = (uint8_t)c;
        dst[pos++] = (uint8_t)(c >> 8);
    }
    memcpy(dst + pos, deflate, dlen);
    pos += dlen;
    uint32_t crc = tg__crc32(0, plain, plen), isize = (uint32_t)plen;
    for (int i = 0; i < 4; i++)
        dst[pos++] = (uint8_t)(crc >> (8 * i));
    for (int i = 0; i < 4; i++)
        dst[pos++] = (uint8_t)(isize >> (8 * i));
    return pos;
}

/* ---- inflate ------------------------------------------------------------ */

START_TEST(test_crc32_known)
{
    // The check value of CRC-32/ISO-HDLC.
    ck_assert_uint_eq(tg__crc32(0, (const uint8_t *)"123456789", 9), 0xcbf43926u);
    // Incremental use gives the same result as one call.
    uint32_t c = tg__crc32(0, (const uint8_t *)"1234", 4);
    ck_assert_uint_eq(tg__crc32(c, (const uint8_t *)"56789", 5), 0xcbf43926u);
    ck_assert_uint_eq(tg__crc32(0, NULL, 0), 0);
}
END_TEST

START_TEST(test_inflate_stored)
{
    check_decodes(false, vec_stored, sizeof vec_stored, STORED_TEXT, strlen(STORED_TEXT));
}
END_TEST

START_TEST(test_inflate_fixed)
{
    ck_assert_uint_eq((vec_fixed[0] >> 1) & 3, 1); // really a fixed-Huffman block
    check_decodes(false, vec_fixed, sizeof vec_fixed, FIXED_TEXT, strlen(FIXED_TEXT));
}
END_TEST

START_TEST(test_inflate_dynamic)
{
    ck_assert_uint_eq((vec_dynamic[0] >> 1) & 3, 2);
    make_dyn_text();
    check_decodes(false, vec_dynamic, sizeof vec_dynamic, dyn_text, dyn_text_len);
}
END_TEST

START_TEST(test_inflate_empty)
{
    check_decodes(false, vec_empty, sizeof vec_empty, "", 0);
}
END_TEST

START_TEST(test_inflate_long_distance)
{
    static uint8_t expect[33010];
    lcg_bytes(1, expect, 1000);
    for (size_t i = 0; i < 4430; i++)
        memcpy(expect + 1000 + 7 * i, "0123456", 7);
    lcg_bytes(1, expect + 32010, 1000);
    check_decodes(false, vec_longdist, sizeof vec_longdist, expect, sizeof expect);
}
END_TEST

START_TEST(test_inflate_multi_stored)
{
    // 70000 bytes need two stored blocks: LEN is 16 bits.
    size_t n = 70000;
    uint8_t *plain = malloc(n), *stream = malloc(n + 20);
    lcg_bytes(3, plain, n);
    size_t len = make_stored(stream, plain, n);
    ck_assert_uint_eq(len, n + 10);
    check_decodes(false, stream, len, plain, n);
    free(plain);
    free(stream);
}
END_TEST

START_TEST(test_inflate_trailing_bytes_ignored)
{
    uint8_t buf[sizeof vec_fixed + 3];
    memcpy(buf, vec_fixed, sizeof vec_fixed);
    memcpy(buf + sizeof vec_fixed, "xyz", 3);
    check_decodes(false, buf, sizeof buf, FIXED_TEXT, strlen(FIXED_TEXT));
}
END_TEST

START_TEST(test_inflate_max_out)
{
    make_dyn_text();
    uint8_t *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(tg_inflate(vec_dynamic, sizeof vec_dynamic, &out, &len, dyn_text_len),
                     TG_OK);
    ck_assert_uint_eq(len, dyn_text_len);
    tg_buffer_free(out);
    out = (uint8_t *)"untouched";
    len = 12345;
    ASSERT_FAIL(tg_inflate(vec_dynamic, sizeof vec_dynamic, &out, &len, dyn_text_len - 1),
                TG_ERANGE, "tg_inflate: output exceeds the limit of 2029 bytes");
    ck_assert_str_eq((const char *)out, "untouched");
    ck_assert_uint_eq(len, 12345);
    // Stored blocks take another path to the output.
    ASSERT_FAIL(tg_inflate(vec_stored, sizeof vec_stored, &out, &len, 10), TG_ERANGE,
                "limit of 10 bytes");
}
END_TEST

START_TEST(test_inflate_null_args)
{
    uint8_t *out;
    size_t len;
    ASSERT_FAIL(tg_inflate(NULL, 0, &out, &len, 0), TG_EINVAL, "tg_inflate: NULL input");
    ASSERT_FAIL(tg_inflate(vec_empty, 2, NULL, &len, 0), TG_EINVAL, "tg_inflate: NULL out");
    ASSERT_FAIL(tg_inflate(vec_empty, 2, &out, NULL, 0), TG_EINVAL, "NULL out_len");
    ASSERT_FAIL(tg_inflate(vec_empty, 0, &out, &len, 0), TG_EFORMAT, "truncated");
    tg_buffer_free(NULL);
}
END_TEST

/* Runs tg_inflate on w's bytes and expects TG_EFORMAT with substr. */
static void expect_corrupt(const bitw *w, const char *substr)
{
    uint8_t *out = NULL;
    size_t len = 0;
    ASSERT_FAIL(tg_inflate(w->buf, w->len, &out, &len, 0), TG_EFORMAT, substr);
    ck_assert_ptr_null(out);
    ck_assert_uint_eq(len, 0);
}

START_TEST(test_inflate_bad_blocks)
{
    bitw w = {0};
    put(&w, 1, 1); // BFINAL
    put(&w, 3, 2); // BTYPE 11
    expect_corrupt(&w, "reserved block type 3");

    w = (bitw){0};
    put(&w, 1, 3); // final stored block, then LEN 5 with a wrong NLEN
    w.buf[w.len++] = 5, w.buf[w.len++] = 0, w.buf[w.len++] = 0, w.buf[w.len++] = 0;
    w.bit = 0;
    expect_corrupt(&w, "stored block length 0x0005 does not match its complement 0x0000");

    w = (bitw){0};
    put(&w, 1, 3); // stored, LEN 5, right NLEN, only 2 bytes
    w.buf[w.len++] = 5, w.buf[w.len++] = 0, w.buf[w.len++] = 0xfa, w.buf[w.len++] = 0xff;
    w.buf[w.len++] = 'a', w.buf[w.len++] = 'b';
    w.bit = 0;
    expect_corrupt(&w, "truncated");
}
END_TEST

START_TEST(test_inflate_bad_fixed_codes)
{
    bitw w = {0};
    put(&w, 1, 1), put(&w, 1, 2); // final fixed block
    put_fixed_lit(&w, 'a');
    put_fixed_lit(&w, 257); // length 3 ...
    put_code(&w, 1, 5);     // ... at distance 2, but only 1 byte exists
    put_fixed_lit(&w, 256);
    expect_corrupt(&w, "tg_inflate: distance 2 too far back (only 1 bytes output)");

    w = (bitw){0};
    put(&w, 1, 1), put(&w, 1, 2);
    put_fixed_lit(&w, 'a');
    put_fixed_lit(&w, 286); // assigned by the fixed code but never valid
    expect_corrupt(&w, "invalid length symbol 286");

    w = (bitw){0};
    put(&w, 1, 1), put(&w, 1, 2);
    put_fixed_lit(&w, 'a');
    put_fixed_lit(&w, 257);
    put_code(&w, 30, 5); // distance symbols 30 and 31 are invalid
    expect_corrupt(&w, "invalid distance symbol 30");

    w = (bitw){0};
    put(&w, 1, 1), put(&w, 1, 2);
    put_fixed_lit(&w, 'a'); // no end-of-block: the input just ends
    expect_corrupt(&w, "truncated deflate data");
}
END_TEST

START_TEST(test_inflate_bad_dynamic_header)
{
    bitw w = {0};
    put(&w, 1, 1), put(&w, 2, 2);
    put(&w, 30, 5), put(&w, 0, 5), put(&w, 0, 4); // HLIT 30: 287 codes
    expect_corrupt(&w, "declares 287 literal/length and 1 distance codes");

    // Code-length code {0: 1 bit, 16: 1 bit}; the first length is "repeat".
    w = (bitw){0};
    put(&w, 1, 1), put(&w, 2, 2);
    put(&w, 0, 5), put(&w, 0, 5), put(&w, 0, 4);
    uint8_t l1[19] = {[0] = 1, [16] = 1};
    put_clen_lengths(&w, l1, 4);
    put_code(&w, 1, 1); // symbol 16
    put(&w, 0, 2);
    expect_corrupt(&w, "code length repeat with no previous length");

    w = (bitw){0};
    put(&w, 1, 1), put(&w, 2, 2);
    put(&w, 0, 5), put(&w, 0, 5), put(&w, 0, 4);
    uint8_t l2[19] = {[16] = 1, [17] = 1, [18] = 1}; // three 1-bit codes
    put_clen_lengths(&w, l2, 4);
    expect_corrupt(&w, "over-subscribed code-length code");

    w = (bitw){0};
    put(&w, 1, 1), put(&w, 2, 2);
    put(&w, 0, 5), put(&w, 0, 5), put(&w, 0, 4);
    uint8_t l3[19] = {[0] = 2}; // one 2-bit code: three quarters unused
    put_clen_lengths(&w, l3, 4);
    expect_corrupt(&w, "incomplete code-length code");

    // 18 repeats 11..138 zeros; 138 zeros past 257 + 1 lengths overflow.
    w = (bitw){0};
    put(&w, 1, 1), put(&w, 2, 2);
    put(&w, 0, 5), put(&w, 0, 5), put(&w, 0, 4);
    uint8_t l4[19] = {[0] = 1, [18] = 1};
    put_clen_lengths(&w, l4, 4);
    put_code(&w, 1, 1), put(&w, 127, 7); // 138 zeros
    put_code(&w, 1, 1), put(&w, 127, 7); // 276 > 258
    expect_corrupt(&w, "code length repeat runs past the 258 lengths declared");
}
END_TEST

/* Code-length code {18: 0, 0: 10, 1: 11} (18 gets 1 bit, 0 and 1 two bits). */
static void put_small_clen(bitw *w)
{
    put(w, 1, 1), put(w, 2, 2);
    put(w, 0, 5), put(w, 0, 5), put(w, 14, 4); // 257 + 1 codes, 18 code lengths
    uint8_t l[19] = {[18] = 1, [0] = 2, [1] = 2};
    put_clen_lengths(w, l, 18);
}

START_TEST(test_inflate_bad_dynamic_codes)
{
    // Literals 0 and 1 get 1 bit each and 256 (end-of-block) none.
    bitw w = {0};
    put_small_clen(&w);
    put_code(&w, 3, 2), put_code(&w, 3, 2);         // lengths 1, 1
    put_code(&w, 0, 1), put(&w, 127, 7);            // 138 zeros
    put_code(&w, 0, 1), put(&w, 117 - 11, 7);       // 117 zeros: 257 in all
    put_code(&w, 2, 2);                             // distance code length 0
    expect_corrupt(&w, "dynamic block has no end-of-block code");

    // Literal 0 gets 1 bit and 256 gets 1 bit, and literal 1 also 1 bit.
    w = (bitw){0};
    put_small_clen(&w);
    put_code(&w, 3, 2), put_code(&w, 3, 2);         // 0 and 1: length 1
    put_code(&w, 0, 1), put(&w, 127, 7);
    put_code(&w, 0, 1), put(&w, 116 - 11, 7);       // up to 255
    put_code(&w, 3, 2);                             // 256: length 1 -> 3 one-bit codes
    put_code(&w, 2, 2);
    expect_corrupt(&w, "over-subscribed literal/length code");

    // Only literal 0 (1 bit) and 256 (... 0 bits would be missing EOB), so use
    // 0 and 256 with lengths 1 and ... a single 1-bit code plus nothing else
    // is allowed; two codes of length 1 and 2 leave a quarter unused.
    w = (bitw){0};
    put(&w, 1, 1), put(&w, 2, 2);
    put(&w, 0, 5), put(&w, 0, 5), put(&w, 14, 4);
    uint8_t l[19] = {[0] = 2, [1] = 2, [2] = 2, [18] = 2}; // codes 00 01 10 11
    put_clen_lengths(&w, l, 18);
    put_code(&w, 1, 2);                             // literal 0: length 1
    put_code(&w, 3, 2), put(&w, 127, 7);            // 1..138: 0
    put_code(&w, 3, 2), put(&w, 117 - 11, 7);       // 139..255: 0
    put_code(&w, 2, 2);                             // 256: length 2
    put_code(&w, 0, 2);                             // no distance codes
    expect_corrupt(&w, "incomplete literal/length code");
}
END_TEST

START_TEST(test_inflate_single_code_ok)
{
    // RFC 1951 allows one distance code of one bit; the empty block that uses
    // just end-of-block (a single 1-bit literal/length code) must decode.
    bitw w = {0};
    put(&w, 1, 1), put(&w, 2, 2);
    put(&w, 0, 5), put(&w, 0, 5), put(&w, 14, 4);
    uint8_t l[19] = {[0] = 2, [1] = 2, [2] = 2, [18] = 2};
    put_clen_lengths(&w, l, 18);
    put_code(&w, 3, 2), put(&w, 127, 7);      // 0..137: 0
    put_code(&w, 3, 2), put(&w, 118 - 11, 7); // 138..255: 0
    put_code(&w, 1, 2);                       // 256: length 1
    put_code(&w, 1, 2);                       // one distance code of length 1
    put_code(&w, 0, 1);                       // end-of-block
    uint8_t *out = NULL;
    size_t len = 1;
    ck_assert_msg(tg_inflate(w.buf, w.len, &out, &len, 0) == TG_OK, "%s", tg_last_error());
    ck_assert_uint_eq(len, 0);
    tg_buffer_free(out);
}
END_TEST

START_TEST(test_inflate_every_prefix_truncated)
{
    const uint8_t *streams[3] = {vec_dynamic, vec_fixed, vec_stored};
    size_t lens[3] = {sizeof vec_dynamic, sizeof vec_fixed, sizeof vec_stored};
    for (int s = 0; s < 3; s++) {
        for (size_t k = 0; k < lens[s]; k++) {
            uint8_t *copy = malloc(k ? k : 1); // exact size: ASan sees any overread
            memcpy(copy, streams[s], k);
            uint8_t *out = NULL;
            size_t len = 0;
            tg_status st = tg_inflate(copy, k, &out, &len, 0);
            ck_assert_msg(st == TG_EFORMAT, "stream %d prefix %zu: status %d", s, k, st);
            ck_assert_ptr_null(out);
            free(copy);
        }
    }
}
END_TEST

START_TEST(test_inflate_random_input)
{
    // Arbitrary bytes: any outcome but a crash or an out-of-bounds read.
    tg_rng rng = tg_rng_seeded(11);
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = 1 + tg_rng_below(&rng, 300);
        uint8_t *buf = malloc(n);
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)tg_rng_next_u64(&rng);
        uint8_t *out = NULL;
        size_t len = 0;
        tg_status st = tg_inflate(buf, n, &out, &len, 1 << 16);
        ck_assert(st == TG_OK || st == TG_EFORMAT || st == TG_ERANGE);
        if (st == TG_OK)
            tg_buffer_free(out);
        free(buf);
    }
}
END_TEST

/* ---- gunzip ------------------------------------------------------------- */

START_TEST(test_gunzip_fname)
{
    ck_assert_uint_eq(vec_gz_fname[3] & GZ_FNAME, GZ_FNAME);
    check_decodes(true, vec_gz_fname, sizeof vec_gz_fname,
                  "hello gzip\nhello gzip\nhello gzip\n", 33);
}
END_TEST

START_TEST(test_gunzip_two_members)
{
    const char expect[] = "first member\nsecond member\n";
    check_decodes(true, vec_gz_two, sizeof vec_gz_two, expect, strlen(expect));
}
END_TEST

START_TEST(test_gunzip_dynamic)
{
    make_dyn_text();
    check_decodes(true, vec_gz_dynamic, sizeof vec_gz_dynamic, dyn_text, dyn_text_len);
}
END_TEST

START_TEST(test_gunzip_header_fields)
{
    // Every optional field at once, with a valid header CRC.
    uint8_t buf[256];
    unsigned all = GZ_FEXTRA | GZ_FNAME | GZ_FCOMMENT | GZ_FHCRC;
    size_t n = make_gzip(buf, all, vec_stored, sizeof vec_stored, (const uint8_t *)STORED_TEXT,
                         strlen(STORED_TEXT));
    check_decodes(true, buf, n, STORED_TEXT, strlen(STORED_TEXT));
    for (unsigned f = 0; f < 32; f += 2) { // each combination (FTEXT 1 ignored)
        n = make_gzip(buf, f, vec_fixed, sizeof vec_fixed, (const uint8_t *)FIXED_TEXT,
                      strlen(FIXED_TEXT));
        check_decodes(true, buf, n, FIXED_TEXT, strlen(FIXED_TEXT));
    }
    // Cut anywhere, the optional fields must still be parsed within bounds.
    for (size_t k = 0; k < n; k++) {
        uint8_t *copy = malloc(k ? k : 1);
        memcpy(copy, buf, k);
        uint8_t *out = NULL;
        size_t len = 0;
        ck_assert_int_eq(tg_gunzip(copy, k, &out, &len, 0), TG_EFORMAT);
        ck_assert_ptr_null(out);
        free(copy);
    }
    // A wrong header CRC (its low byte, after 10 + 8 + 9 + 10 header bytes).
    n = make_gzip(buf, all, vec_stored, sizeof vec_stored, (const uint8_t *)STORED_TEXT,
                  strlen(STORED_TEXT));
    buf[10 + 8 + 9 + 10] ^= 0x40;
    uint8_t *out;
    size_t len;
    ASSERT_FAIL(tg_gunzip(buf, n, &out, &len, 0), TG_EFORMAT,
                "tg_gunzip: member 1: header CRC mismatch");
}
END_TEST

START_TEST(test_gunzip_bad_crc)
{
    uint8_t buf[sizeof vec_gz_fname];
    memcpy(buf, vec_gz_fname, sizeof buf);
    buf[sizeof buf - 8] ^= 1; // low byte of the stored CRC-32
    uint32_t good = tg__crc32(0, (const uint8_t *)"hello gzip\nhello gzip\nhello gzip\n", 33);
    char expect[128];
    snprintf(expect, sizeof expect,
             "tg_gunzip: member 1: CRC mismatch (stored 0x%08x, computed 0x%08x)",
             (unsigned)(good ^ 1), (unsigned)good);
    uint8_t *out = (uint8_t *)"x";
    size_t len = 7;
    ASSERT_FAIL(tg_gunzip(buf, sizeof buf, &out, &len, 0), TG_EFORMAT, expect);
    ck_assert_str_eq((const char *)out, "x"); // outputs untouched
    ck_assert_uint_eq(len, 7);

    memcpy(buf, vec_gz_fname, sizeof buf);
    buf[sizeof buf - 4] ^= 1; // ISIZE
    ASSERT_FAIL(tg_gunzip(buf, sizeof buf, &out, &len, 0), TG_EFORMAT,
                "member 1: size mismatch (stored 32, decoded 33");

    // The second member's CRC.
    uint8_t two[sizeof vec_gz_two];
    memcpy(two, vec_gz_two, sizeof two);
    two[sizeof two - 6] ^= 0x80;
    ASSERT_FAIL(tg_gunzip(two, sizeof two, &out, &len, 0), TG_EFORMAT,
                "member 2: CRC mismatch");
}
END_TEST

START_TEST(test_gunzip_bad_header)
{
    uint8_t buf[sizeof vec_gz_fname];
    uint8_t *out;
    size_t len;
    memcpy(buf, vec_gz_fname, sizeof buf);
    buf[1] = 0x8c;
    ASSERT_FAIL(tg_gunzip(buf, sizeof buf, &out, &len, 0), TG_EFORMAT,
                "tg_gunzip: member 1: not gzip data (magic 0x1f 0x8c, expected 0x1f 0x8b)");
    memcpy(buf, vec_gz_fname, sizeof buf);
    buf[2] = 7;
    ASSERT_FAIL(tg_gunzip(buf, sizeof buf, &out, &len, 0), TG_EFORMAT,
                "unsupported compression method 7");
    memcpy(buf, vec_gz_fname, sizeof buf);
    buf[3] |= 0x20;
    ASSERT_FAIL(tg_gunzip(buf, sizeof buf, &out, &len, 0), TG_EFORMAT,
                "reserved header flags set (0x28)");
    ASSERT_FAIL(tg_gunzip(buf, 0, &out, &len, 0), TG_EFORMAT, "truncated gzip header (0 bytes)");
    memcpy(buf, vec_gz_fname, sizeof buf);
    buf[3] |= GZ_FCOMMENT; // the comment's terminator never comes
    ASSERT_FAIL(tg_gunzip(buf, 20, &out, &len, 0), TG_EFORMAT, "unterminated");
    ASSERT_FAIL(tg_gunzip(NULL, 10, &out, &len, 0), TG_EINVAL, "tg_gunzip: NULL input");
    ASSERT_FAIL(tg_gunzip(buf, 10, NULL, &len, 0), TG_EINVAL, "tg_gunzip: NULL out");
}
END_TEST

START_TEST(test_gunzip_trailing_garbage)
{
    uint8_t buf[sizeof vec_gz_fname + 4];
    memcpy(buf, vec_gz_fname, sizeof vec_gz_fname);
    memset(buf + sizeof vec_gz_fname, 0, 4);
    uint8_t *out;
    size_t len;
    ASSERT_FAIL(tg_gunzip(buf, sizeof buf, &out, &len, 0), TG_EFORMAT,
                "tg_gunzip: 4 bytes of trailing data after member 1 are not a gzip member");
}
END_TEST

START_TEST(test_gunzip_max_out)
{
    uint8_t *out;
    size_t len;
    // 13 + 14 bytes: the limit falls inside the second member.
    ASSERT_FAIL(tg_gunzip(vec_gz_two, sizeof vec_gz_two, &out, &len, 20), TG_ERANGE,
                "tg_gunzip: member 2: output exceeds the limit of 20 bytes");
    ck_assert_int_eq(tg_gunzip(vec_gz_two, sizeof vec_gz_two, &out, &len, 27), TG_OK);
    ck_assert_uint_eq(len, 27);
    tg_buffer_free(out);
}
END_TEST

START_TEST(test_gunzip_every_prefix_truncated)
{
    const uint8_t *streams[3] = {vec_gz_fname, vec_gz_two, vec_gz_dynamic};
    size_t lens[3] = {sizeof vec_gz_fname, sizeof vec_gz_two, sizeof vec_gz_dynamic};
    // The second member starts at the second 1f 8b 08 of vec_gz_two.
    size_t member_end = 0;
    for (size_t i = 1; i + 2 < sizeof vec_gz_two && !member_end; i++)
        if (vec_gz_two[i] == 0x1f && vec_gz_two[i + 1] == 0x8b && vec_gz_two[i + 2] == 8)
            member_end = i;
    ck_assert_uint_gt(member_end, 18);
    for (int s = 0; s < 3; s++) {
        for (size_t k = 0; k < lens[s]; k++) {
            uint8_t *copy = malloc(k ? k : 1);
            memcpy(copy, streams[s], k);
            uint8_t *out = NULL;
            size_t len = 0;
            tg_status st = tg_gunzip(copy, k, &out, &len, 0);
            free(copy);
            if (st == TG_OK) {
                // Cut exactly after the first of two members: a valid gzip file.
                ck_assert_msg(s == 1 && k == member_end, "prefix %zu of stream %d decoded", k,
                              s);
                ck_assert_uint_eq(len, 13);
                ck_assert(memcmp(out, "first member\n", 13) == 0);
                tg_buffer_free(out);
                continue;
            }
            ck_assert_msg(st == TG_EFORMAT, "stream %d prefix %zu: status %d", s, k, st);
            ck_assert_ptr_null(out);
            ck_assert(strncmp(tg_last_error(), "tg_gunzip: ", 11) == 0);
        }
    }
}
END_TEST

START_TEST(test_gunzip_byte_flips)
{
    // One corrupted byte: the CRC catches it, or it hit a field the decoder
    // does not interpret (MTIME, XFL, OS) and the output is still right.
    make_dyn_text();
    tg_rng rng = tg_rng_seeded(5);
    size_t n = sizeof vec_gz_dynamic;
    int ok = 0, failed = 0;
    for (int iter = 0; iter < 4000; iter++) {
        uint8_t *buf = malloc(n);
        memcpy(buf, vec_gz_dynamic, n);
        size_t at = tg_rng_below(&rng, n);
        buf[at] ^= (uint8_t)(1 + tg_rng_below(&rng, 255));
        uint8_t *out = NULL;
        size_t len = 0;
        tg_status st = tg_gunzip(buf, n, &out, &len, 1 << 20);
        if (st == TG_OK) {
            ck_assert_msg(len == dyn_text_len && memcmp(out, dyn_text, len) == 0,
                          "flip at %zu gave wrong output without an error", at);
            tg_buffer_free(out);
            ok++;
        } else {
            ck_assert_msg(st == TG_EFORMAT || st == TG_ERANGE, "status %d", st);
            failed++;
        }
        free(buf);
    }
    ck_assert_int_gt(failed, 3500);
    ck_assert_int_gt(ok, 0);
}
END_TEST

/* ---- gunzip from a stream ------------------------------------------------ */

/* A stream over a buffer, `chunk` bytes a read, failing with TG_EIO once
 * fail_at bytes are out (SIZE_MAX: never). */
typedef struct mem_stream {
    tg__instream s;
    const uint8_t *data;
    size_t len, pos, chunk, fail_at;
} mem_stream;

static size_t mem_read(tg__instream *s, uint8_t *dst, size_t n)
{
    mem_stream *m = s->ctx;
    if (m->pos >= m->fail_at) {
        s->status = TG_EIO;
        snprintf(s->msg, sizeof s->msg, "test stream: read error at byte %zu", m->pos);
        return 0;
    }
    size_t k = m->len - m->pos;
    k = k < n ? k : n;
    k = k < m->chunk ? k : m->chunk;
    k = k < m->fail_at - m->pos ? k : m->fail_at - m->pos;
    memcpy(dst, m->data + m->pos, k);
    m->pos += k;
    return k;
}

static tg_status gunzip_streamed(const uint8_t *in, size_t n, size_t chunk, size_t window,
                                 size_t fail_at, uint8_t **out, size_t *len)
{
    mem_stream m = {.data = in, .len = n, .chunk = chunk, .fail_at = fail_at};
    m.s = (tg__instream){.read = mem_read, .ctx = &m};
    return tg__gunzip_stream(&m.s, window, 0, 0, NULL, NULL, out, len);
}

/* The streamed decoder against the one over memory, on the same bytes:
 * the same status, message and output, whatever the read sizes (1 byte at
 * a time slides the window at every refill) and the window (64 bytes: a
 * stored block copied in pieces). */
static void check_stream_same(const uint8_t *in, size_t n, const char *what)
{
    uint8_t *ref = NULL;
    size_t ref_len = 0;
    tg_clear_error();
    tg_status want = tg_gunzip(in, n, &ref, &ref_len, 0);
    char want_msg[512];
    snprintf(want_msg, sizeof want_msg, "%s", tg_last_error());
    static const size_t chunks[] = {1, 3, 7, 1 << 20}, windows[] = {64, 4096};
    for (size_t c = 0; c < 4; c++)
        for (size_t w = 0; w < 2; w++) {
            uint8_t *out = NULL;
            size_t len = 0;
            tg_clear_error();
            tg_status st = gunzip_streamed(in, n, chunks[c], windows[w], SIZE_MAX, &out, &len);
            ck_assert_msg(st == want, "%s, chunk %zu, window %zu: status %d, not %d (%s)", what,
                          chunks[c], windows[w], st, want, tg_last_error());
            if (st == TG_OK) {
                ck_assert_msg(len == ref_len && memcmp(out, ref, len) == 0,
                              "%s, chunk %zu, window %zu: output differs", what, chunks[c],
                              windows[w]);
                tg_buffer_free(out);
            } else {
                ck_assert_ptr_null(out);
                ck_assert_msg(strcmp(tg_last_error(), want_msg) == 0,
                              "%s, chunk %zu, window %zu: \"%s\", not \"%s\"", what,
                              chunks[c], windows[w], tg_last_error(), want_msg);
            }
        }
    tg_buffer_free(ref);
}

START_TEST(test_gunzip_stream_same_as_memory)
{
    const uint8_t *streams[3] = {vec_gz_fname, vec_gz_two, vec_gz_dynamic};
    size_t lens[3] = {sizeof vec_gz_fname, sizeof vec_gz_two, sizeof vec_gz_dynamic};
    char what[64];
    for (int s = 0; s < 3; s++) {
        // Whole, every prefix (every truncation), and some corrupted bytes.
        for (size_t k = 0; k <= lens[s]; k++) {
            snprintf(what, sizeof what, "stream %d, prefix %zu", s, k);
            check_stream_same(streams[s], k, what);
        }
        tg_rng rng = tg_rng_seeded(11 + (uint64_t)s);
        uint8_t *buf = malloc(lens[s]);
        for (int iter = 0; iter < 200; iter++) {
            memcpy(buf, streams[s], lens[s]);
            size_t at = tg_rng_below(&rng, lens[s]);
            buf[at] ^= (uint8_t)(1 + tg_rng_below(&rng, 255));
            snprintf(what, sizeof what, "stream %d, byte %zu flipped", s, at);
            check_stream_same(buf, lens[s], what);
        }
        free(buf);
    }
    // A stored block (copied through the small window in pieces), every
    // header field, trailing garbage.
    uint8_t g[256];
    size_t n = make_gzip(g, GZ_FEXTRA | GZ_FNAME | GZ_FCOMMENT | GZ_FHCRC, vec_stored,
                         sizeof vec_stored, (const uint8_t *)STORED_TEXT, strlen(STORED_TEXT));
    check_stream_same(g, n, "stored, all header fields");
    memset(g + n, 0, 5);
    check_stream_same(g, n + 5, "trailing garbage");
    // A stored block of 300 bytes, longer than the 64-byte window, then a
    // fixed block: whole and cut anywhere.
    uint8_t plain[300 + sizeof FIXED_TEXT], raw[305 + sizeof vec_fixed], big[400];
    for (int i = 0; i < 300; i++)
        plain[i] = (uint8_t)('a' + i % 26);
    memcpy(plain + 300, FIXED_TEXT, strlen(FIXED_TEXT));
    const uint8_t head[5] = {0x00, 300 & 0xff, 300 >> 8, (uint8_t)~(300 & 0xff),
                             (uint8_t)~(300 >> 8)};
    memcpy(raw, head, 5);
    memcpy(raw + 5, plain, 300);
    memcpy(raw + 305, vec_fixed, sizeof vec_fixed); // its BFINAL bit ends the stream
    n = make_gzip(big, 0, raw, 305 + sizeof vec_fixed, plain, 300 + strlen(FIXED_TEXT));
    check_decodes(true, big, n, plain, 300 + strlen(FIXED_TEXT));
    for (size_t k = 0; k <= n; k += 7) {
        snprintf(what, sizeof what, "long stored block, prefix %zu", k);
        check_stream_same(big, k, what);
    }
}
END_TEST

START_TEST(test_gunzip_stream_errors)
{
    uint8_t *out = (uint8_t *)"unchanged";
    size_t len = 0;
    // The stream's own error is the one reported, wherever it strikes:
    // inside the data, and at the very end (after the last member).
    for (size_t at = 0; at <= sizeof vec_gz_dynamic; at += 37) {
        out = NULL;
        ASSERT_FAIL(gunzip_streamed(vec_gz_dynamic, sizeof vec_gz_dynamic, 5, 64, at, &out,
                                    &len),
                    TG_EIO, "test stream: read error at byte");
        ck_assert_ptr_null(out);
    }
    out = NULL;
    ASSERT_FAIL(gunzip_streamed(vec_gz_two, sizeof vec_gz_two, 1 << 20, 4096, sizeof vec_gz_two,
                                &out, &len),
                TG_EIO, "test stream: read error at byte 67");
    ck_assert_ptr_null(out);
    // A header longer than the window: refused by name, not as truncated.
    uint8_t g[256] = {0x1f, 0x8b, 8, GZ_FNAME, 0, 0, 0, 0, 0, 3};
    memset(g + 10, 'n', 100);
    g[110] = 0;
    memcpy(g + 111, vec_gz_fname + 20, sizeof vec_gz_fname - 20); // its deflate data, trailer
    out = NULL;
    ASSERT_FAIL(gunzip_streamed(g, 111 + sizeof vec_gz_fname - 20, 1 << 20, 64, SIZE_MAX, &out,
                                &len),
                TG_EFORMAT, "tg_gunzip: member 1: gzip header longer than the 64 bytes");
    ck_assert_int_eq(gunzip_streamed(g, 111 + sizeof vec_gz_fname - 20, 1, 4096, SIZE_MAX, &out,
                                     &len),
                     TG_OK);
    ck_assert_uint_eq(len, 33);
    ck_assert(memcmp(out, "hello gzip\nhello gzip\nhello gzip\n", 33) == 0);
    tg_buffer_free(out);
    ASSERT_FAIL(tg__gunzip_stream(NULL, 64, 0, 0, NULL, NULL, &out, &len), TG_EINVAL,
                "tg_gunzip: NULL input");
}
END_TEST

/* ---- IDX ---------------------------------------------------------------- */

/* TG_TEST_BUILD_DIR/check_io_<name>, in a static buffer. */
static const char *scratch(const char *name)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/check_io_%s", TG_TEST_BUILD_DIR, name);
    return path;
}

static void write_file(const char *path, const uint8_t *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* An IDX ubyte file: header for dims, then `payload` bytes of a pattern.
 * Returns the size written into buf. */
static size_t make_idx(uint8_t *buf, int ndim, const uint32_t *dims, size_t payload)
{
    size_t pos = 0;
    buf[pos++] = 0, buf[pos++] = 0, buf[pos++] = 0x08, buf[pos++] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++)
        for (int b = 3; b >= 0; b--)
            buf[pos++] = (uint8_t)(dims[i] >> (8 * b));
    for (size_t i = 0; i < payload; i++)
        buf[pos++] = (uint8_t)(i * 7 + 1);
    return pos;
}

START_TEST(test_idx_raw)
{
    uint8_t buf[256];
    size_t n = make_idx(buf, 3, (const uint32_t[]){2, 3, 4}, 24);
    const char *path = scratch("raw3.idx");
    write_file(path, buf, n);
    tg_idx *idx = tg_idx_load(path);
    ck_assert_msg(idx != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_idx_ndim(idx), 3);
    ck_assert_int_eq(tg_idx_dims(idx)[0], 2);
    ck_assert_int_eq(tg_idx_dims(idx)[1], 3);
    ck_assert_int_eq(tg_idx_dims(idx)[2], 4);
    ck_assert_uint_eq(tg_idx_size(idx), 24);
    ck_assert(memcmp(tg_idx_data(idx), buf + 16, 24) == 0);
    tg_idx_free(idx);

    for (int nd = 1; nd <= 4; nd++) { // 1..4 dims, each of size 2
        n = make_idx(buf, nd, (const uint32_t[]){2, 2, 2, 2}, (size_t)1 << nd);
        write_file(path, buf, n);
        idx = tg_idx_load(path);
        ck_assert_msg(idx != NULL, "%s", tg_last_error());
        ck_assert_int_eq(tg_idx_ndim(idx), nd);
        ck_assert_uint_eq(tg_idx_size(idx), (size_t)1 << nd);
        tg_idx_free(idx);
    }
}
END_TEST

START_TEST(test_idx_gzip)
{
    uint8_t plain[256], stored[300], gz[400];
    size_t n = make_idx(plain, 2, (const uint32_t[]){10, 5}, 50);
    size_t sn = make_stored(stored, plain, n);
    size_t gn = make_gzip(gz, GZ_FNAME, stored, sn, plain, n);
    // The .gz suffix does not matter: the magic decides.
    const char *path = scratch("gz2.idx");
    write_file(path, gz, gn);
    tg_idx *idx = tg_idx_load(path);
    ck_assert_msg(idx != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_idx_ndim(idx), 2);
    ck_assert_int_eq(tg_idx_dims(idx)[0], 10);
    ck_assert_int_eq(tg_idx_dims(idx)[1], 5);
    ck_assert(memcmp(tg_idx_data(idx), plain + 12, 50) == 0);
    tg_idx_free(idx);

    gz[gn - 5] ^= 0xff; // CRC
    write_file(path, gz, gn);
    char expect[1400];
    snprintf(expect, sizeof expect, "tg_idx_load: %s: tg_gunzip: member 1: CRC mismatch", path);
    ASSERT_NULL_FAIL(tg_idx_load(path), TG_EFORMAT, expect);

    // A gzip file whose content is truncated IDX data.
    sn = make_stored(stored, plain, n - 1);
    gn = make_gzip(gz, 0, stored, sn, plain, n - 1);
    write_file(path, gz, gn);
    ASSERT_NULL_FAIL(tg_idx_load(path), TG_EFORMAT,
                     "truncated: header says 10x5 = 50 bytes, file has 49");
}
END_TEST

START_TEST(test_idx_size_mismatch)
{
    uint8_t buf[256];
    const char *path = scratch("bad.idx");
    char expect[1400];
    size_t n = make_idx(buf, 3, (const uint32_t[]){3, 4, 5}, 59);
    write_file(path, buf, n);
    snprintf(expect, sizeof expect,
             "tg_idx_load: %s: truncated: header says 3x4x5 = 60 bytes, file has 59", path);
    ASSERT_NULL_FAIL(tg_idx_load(path), TG_EFORMAT, expect);

    n = make_idx(buf, 3, (const uint32_t[]){3, 4, 5}, 61);
    write_file(path, buf, n);
    ASSERT_NULL_FAIL(tg_idx_load(path), TG_EFORMAT,
                     "oversized: header says 3x4x5 = 60 bytes, file has 61");

    // The header itself cut short.
    n = make_idx(buf, 3, (const uint32_t[]){3, 4, 5}, 0);
    write_file(path, buf, 10);
    ASSERT_NULL_FAIL(tg_idx_load(path), TG_EFORMAT, "truncated header (10 bytes, 3 dims need 16)");
    write_file(path, buf, 3);
    ASSERT_NULL_FAIL(tg_idx_load(path), TG_EFORMAT, "too short for an IDX header (3 bytes)");
}
END_TEST

START_TEST(test_idx_bad_magic)
{
    uint8_t buf[64];
    const char *path = scratch("magic.idx");
    size_t n = make_idx(buf, 1, (const uint32_t[]){4}, 4);
    buf[0] = 0x12;
    write_file(path, buf, n);
    ASSERT_NULL_FAIL(tg_idx_load(path), TG_EFORMAT, "bad magic 0x12000801");

    make_idx(buf, 1, (const uint32_t[]){4}, 4);
    buf[2] = 0x0d; // float elements
    write_file(path, buf, n);
    ASSERT_NULL_FAIL(tg_idx_load(path), TG_EFORMAT,
                     "unsupported element type 0x0d in magic 0x00000d01");

    make_idx(buf, 1, (const uint32_t[]){4}, 4);
    buf[3] = 0;
    write_file(path, buf, n);
    ASSERT_NULL_FAIL(tg_idx_load(path), TG_EFORMAT, "unsupported number of dims 0 (1..4)");
    buf[3] = 5;
    write_file(path, buf, n);
    ASSERT_NULL_FAIL(tg_idx_load(path), TG_EFORMAT, "unsupported number of dims 5");
}
END_TEST

START_TEST(test_idx_huge_dims)
{
    uint8_t buf[64];
    const char *path = scratch("huge.idx");
    // 4 x (2^32 - 1) overflows 64 bits: an error, not a wrapped small size.
    size_t n = make_idx(buf, 4, (const uint32_t[]){0xffffffffu, 0xffffffffu, 0xffffffffu,
                                                   0xffffffffu}, 8);
    write_file(path, buf, n);
    ASSERT_NULL_FAIL(tg_idx_load(path), TG_ERANGE,
                     "dims 4294967295x4294967295x4294967295x4294967295 exceed the limit of "
                     "1073741824 bytes (TG_IDX_MAX_BYTES)");
    // Representable but past the cap: refused before anything is read or decoded.
    n = make_idx(buf, 3, (const uint32_t[]){0xffffffffu, 0xffffffffu, 1}, 8);
    write_file(path, buf, n);
    ASSERT_NULL_FAIL(tg_idx_load(path), TG_ERANGE, "dims 4294967295x4294967295x1 exceed");
    // Exactly the cap is allowed by the dims (the file is then simply too short).
    n = make_idx(buf, 2, (const uint32_t[]){1u << 15, 1u << 15}, 8);
    write_file(path, buf, n);
    ASSERT_NULL_FAIL(tg_idx_load(path), TG_EFORMAT,
                     "truncated: header says 32768x32768 = 1073741824 bytes, file has 8");
    n = make_idx(buf, 2, (const uint32_t[]){1u << 15, (1u << 15) + 1}, 8);
    write_file(path, buf, n);
    ASSERT_NULL_FAIL(tg_idx_load(path), TG_ERANGE, "dims 32768x32769 exceed the limit");
    // A zero dim beside small ones is an empty array.
    n = make_idx(buf, 3, (const uint32_t[]){0, 1000, 1000}, 0);
    write_file(path, buf, n);
    tg_idx *idx = tg_idx_load(path);
    ck_assert_msg(idx != NULL, "%s", tg_last_error());
    ck_assert_uint_eq(tg_idx_size(idx), 0);
    tg_idx_free(idx);
}
END_TEST

/* Issue 11 item 10: FFFFFFFF x FFFFFFFF x FFFFFFFF x 0 gave TG_ERANGE while
 * 0 x FFFFFFFF x ... was accepted. One rule now: zero dims count as 1, so both
 * orders (and any other) are refused alike. */
START_TEST(test_idx_dims_one_rule)
{
    uint8_t buf[64];
    const char *path = scratch("zero-dims.idx");
    const uint32_t orders[4][4] = {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0},
                                   {0, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                                   {0xffffffffu, 0, 0xffffffffu, 0xffffffffu},
                                   {0, 0xffffffffu, 0xffffffffu, 0}};
    for (int k = 0; k < 4; k++) {
        size_t n = make_idx(buf, 4, orders[k], 0);
        write_file(path, buf, n);
        ASSERT_FRESH_NULL_FAIL(tg_idx_load(path), TG_ERANGE,
                               "(TG_IDX_MAX_BYTES), zero dims counted as 1");
    }
    // Two orders of 0 x 70000 x 70000: refused alike (70000^2 bytes is over the cap).
    const uint32_t pairs[2][3] = {{0, 70000, 70000}, {70000, 70000, 0}};
    for (int k = 0; k < 2; k++) {
        size_t n = make_idx(buf, 3, pairs[k], 0);
        write_file(path, buf, n);
        ASSERT_FRESH_NULL_FAIL(tg_idx_load(path), TG_ERANGE, "zero dims counted as 1");
    }
}
END_TEST

/* A fixed-Huffman deflate stream of `lit` literal bytes and then `runs` copies
 * of 258 bytes at distance 1 (13 bits each): a bomb of 258 bytes per 13 bits. */
static size_t make_bomb_deflate(uint8_t **out, const uint8_t *lit, size_t nlit, size_t runs)
{
    size_t cap = 64 + nlit * 2 + runs * 2;
    uint8_t *d = calloc(cap, 1);
    ck_assert_ptr_nonnull(d);
    size_t bitpos = 0;
#define BOMB_PUT(v, nbits)                                                              \
    for (unsigned i_ = 0; i_ < (nbits); i_++, bitpos++)                                  \
        d[bitpos >> 3] |= (uint8_t)((((v) >> i_) & 1u) << (bitpos & 7));
#define BOMB_CODE(code, nbits)                                                          \
    for (unsigned j_ = (nbits); j_-- > 0;)                                               \
        BOMB_PUT(((code) >> j_) & 1u, 1)
    BOMB_PUT(1u, 1); // BFINAL
    BOMB_PUT(1u, 2); // fixed Huffman
    for (size_t i = 0; i < nlit; i++) {
        if (lit[i] < 144)
            BOMB_CODE(0x30u + lit[i], 8)
        else
            BOMB_CODE(0x190u + lit[i] - 144, 9)
    }
    for (size_t r = 0; r < runs; r++) {
        BOMB_CODE(0xc0u + 285 - 280, 8) // length 258
        BOMB_CODE(0u, 5)                // distance code 0: distance 1
    }
    BOMB_CODE(0u, 7) // end of block (256)
#undef BOMB_CODE
#undef BOMB_PUT
    *out = d;
    return (bitpos + 7) / 8;
}

/* Issue 11 item 9: the whole gzip was decoded before the header was checked
 * (an 8 MiB bomb took 8.2 GB). Now decoding stops once the content passes the
 * size the header states. The bomb's trailer CRC is wrong on purpose: a
 * decoder that ran to the end would report the CRC, not the header. */
START_TEST(test_idx_gzip_bomb)
{
    uint8_t head[64];
    size_t hn = make_idx(head, 2, (const uint32_t[]){10, 5}, 0); // states 50 bytes
    head[hn++] = 0; // the first byte of content; the runs repeat it
    uint8_t *deflate;
    size_t runs = (size_t)1 << 18; // 64 MiB of zeros from about 420 KiB
    size_t dn = make_bomb_deflate(&deflate, head, hn, runs);
    uint8_t *gz = malloc(dn + 32);
    ck_assert_ptr_nonnull(gz);
    static const uint8_t gz_head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    memcpy(gz, gz_head, 10);
    memcpy(gz + 10, deflate, dn);
    memset(gz + 10 + dn, 0, 8); // CRC 0 (wrong) and size 0 (wrong)
    const char *path = scratch("bomb.idx.gz");
    write_file(path, gz, 10 + dn + 8);
    ASSERT_NULL_FAIL(tg_idx_load(path), TG_EFORMAT,
                     "oversized: the header states 62 bytes in all, the gzip data decodes to "
                     "more");
    // A bad header stops the bomb as soon as its bytes are out, and is what is reported.
    free(deflate);
    head[2] = 0x0d; // float32 elements: unsupported
    dn = make_bomb_deflate(&deflate, head, hn, runs);
    memcpy(gz + 10, deflate, dn);
    memset(gz + 10 + dn, 0, 8);
    write_file(path, gz, 10 + dn + 8);
    ASSERT_NULL_FAIL(tg_idx_load(path), TG_EFORMAT, "unsupported element type 0x0d");
    // The same stream through tg_gunzip with a cap is refused as before.
    uint8_t *out = (uint8_t *)&head; // must stay untouched
    size_t out_len = 99;
    ASSERT_FRESH_FAIL(tg_gunzip(gz, 10 + dn + 8, &out, &out_len, 1 << 20), TG_ERANGE,
                      "tg_gunzip: member 1: output exceeds the limit of 1048576 bytes");
    ck_assert_ptr_eq(out, (uint8_t *)&head);
    ck_assert_uint_eq(out_len, 99);
    free(deflate);
    free(gz);
}
END_TEST

/* Issue 11 item 9: a /dev/zero path read until memory ran out. Only regular
 * files are read now; a FIFO is refused without blocking (the test would time
 * out), and a file past the size cap without being read (a sparse file). */
START_TEST(test_idx_not_regular)
{
    FILE *probe = fopen("/dev/zero", "rb");
    if (probe) {
        fclose(probe);
        ASSERT_FRESH_NULL_FAIL(tg_idx_load("/dev/zero"), TG_EIO,
                               "tg_idx_load: /dev/zero: not a regular file (a device)");
    }
    ASSERT_FRESH_NULL_FAIL(tg_idx_load(TG_TEST_BUILD_DIR), TG_EIO,
                           "not a regular file (a directory)");
    const char *fifo = scratch("fifo.idx");
    unlink(fifo);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ASSERT_FRESH_NULL_FAIL(tg_idx_load(fifo), TG_EIO, "not a regular file (a FIFO)");
    unlink(fifo);
    // A dataset directory whose train images are a FIFO: refused by name, no hang.
    char dir[1100], name[1200];
    snprintf(dir, sizeof dir, "%s", scratch("fifo-mnist"));
    mkdir(dir, 0700);
    snprintf(name, sizeof name, "%s/train-images-idx3-ubyte.gz", dir);
    unlink(name);
    ck_assert_int_eq(mkfifo(name, 0600), 0);
    ASSERT_FRESH_NULL_FAIL(tg_mnist_load(dir, TG_F32), TG_EIO,
                           "train-images-idx3-ubyte.gz: not a regular file (a FIFO)");
    unlink(name);
    // Sparse: costs no disk, but its size is past the cap.
    const char *big = scratch("big.idx");
    write_file(big, (const uint8_t *)"", 0);
    ck_assert_int_eq(truncate(big, (off_t)TG_IDX_MAX_BYTES * 2), 0);
    ASSERT_FRESH_NULL_FAIL(tg_idx_load(big), TG_ERANGE, "file of 2147483648 bytes, over the "
                           "limit of");
    unlink(big);
}
END_TEST

START_TEST(test_idx_errors)
{
    ASSERT_NULL_FAIL(tg_idx_load(NULL), TG_EINVAL, "tg_idx_load: NULL path");
    const char *path = scratch("does-not-exist.idx");
    char expect[1400];
    snprintf(expect, sizeof expect, "tg_idx_load: %s: cannot open: No such file", path);
    ASSERT_NULL_FAIL(tg_idx_load(path), TG_EIO, expect);
    // A directory opens but cannot be read (on Linux; elsewhere it fails to open).
    ASSERT_NULL_FAIL(tg_idx_load(TG_TEST_BUILD_DIR), TG_EIO, "tg_idx_load: ");
    ck_assert_int_eq(tg_idx_ndim(NULL), 0);
    ck_assert_ptr_null(tg_idx_dims(NULL));
    ck_assert_ptr_null(tg_idx_data(NULL));
    ck_assert_uint_eq(tg_idx_size(NULL), 0);
    tg_idx_free(NULL);
}
END_TEST

/* ---- MNIST -------------------------------------------------------------- */

static double pixel(tg_tensor *t, int64_t n, int64_t r, int64_t c)
{
    double v = NAN;
    ck_assert_int_eq(tg_tensor_get(t, (const int64_t[]){n, 0, r, c}, &v), TG_OK);
    return v;
}

START_TEST(test_mnist_real)
{
    tg_dataset *ds = tg_mnist_load(TG_TEST_DATA_DIR, TG_F32);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_dataset_count(ds, TG_SPLIT_TRAIN), 8000);
    ck_assert_int_eq(tg_dataset_count(ds, TG_SPLIT_TEST), 2000);
    ck_assert_int_eq(tg_dataset_num_classes(ds), 10);
    tg_tensor *train = tg_dataset_images(ds, TG_SPLIT_TRAIN);
    tg_tensor *test = tg_dataset_images(ds, TG_SPLIT_TEST);
    ck_assert_int_eq(tg_tensor_dtype(train), TG_F32);
    ck_assert_int_eq(tg_tensor_ndim(train), 4);
    const int64_t *s = tg_tensor_shape(train);
    ck_assert(s[0] == 8000 && s[1] == 1 && s[2] == 28 && s[3] == 28);
    ck_assert_int_eq(tg_tensor_dim(test, 0), 2000);
    // Values read from the files with Python's gzip module.
    const int64_t *ytr = tg_dataset_labels(ds, TG_SPLIT_TRAIN);
    const int64_t *yte = tg_dataset_labels(ds, TG_SPLIT_TEST);
    ck_assert(ytr[0] == 6 && ytr[1] == 6 && ytr[2] == 8 && ytr[9] == 2);
    ck_assert(yte[0] == 3 && yte[1] == 4 && yte[9] == 0);
    ck_assert_float_eq_tol(pixel(train, 0, 2, 20), 213.0 / 255.0, 1e-7);
    ck_assert_float_eq(pixel(train, 0, 0, 0), 0.0);
    ck_assert_float_eq_tol(pixel(test, 5, 5, 11), 233.0 / 255.0, 1e-7);
    // All pixels in [0, 1], each byte/255 exactly recoverable, and the bytes
    // sum to the raw files' total.
    // (Counted, then asserted once: each ck_assert costs a write to Check's pipe.)
    const float *px = tg_tensor_data(train);
    int64_t sum = 0, bad = 0;
    for (int64_t i = 0; i < tg_tensor_numel(train); i++) {
        long byte = lroundf(px[i] * 255.0f);
        bad += !(px[i] >= 0.0f && px[i] <= 1.0f) || px[i] != (float)byte / 255.0f;
        sum += byte;
    }
    ck_assert_int_eq(bad, 0);
    ck_assert_int_eq(sum, 209812346);
    tg_dataset_free(ds);
}
END_TEST

START_TEST(test_mnist_f64)
{
    tg_dataset *ds = tg_mnist_load(TG_TEST_DATA_DIR, TG_F64);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    tg_tensor *test = tg_dataset_images(ds, TG_SPLIT_TEST);
    ck_assert_int_eq(tg_tensor_dtype(test), TG_F64);
    ck_assert_double_eq(pixel(test, 5, 5, 10), 145.0 / 255.0);
    ck_assert_ptr_null(tg_dataset_images(ds, (tg_split)2));
    ck_assert_ptr_null(tg_dataset_labels(ds, (tg_split)-1));
    ck_assert_int_eq(tg_dataset_count(ds, (tg_split)7), 0);
    tg_dataset_free(ds);
    tg_dataset_free(NULL);
    ck_assert_int_eq(tg_dataset_num_classes(NULL), 0);
}
END_TEST

/* Writes the four files (raw, no .gz) of a tiny dataset into the scratch
 * directory: ntrain 2x3 images with labels 0..ntrain-1 and so on. */
static void write_tiny_mnist(uint32_t ntrain, uint32_t ntrain_labels, uint32_t ntest,
                             uint32_t test_cols)
{
    static const char *const names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    uint8_t buf[512];
    size_t n[4];
    uint8_t *bufs[4];
    for (int i = 0; i < 4; i++)
        bufs[i] = malloc(512);
    n[0] = make_idx(bufs[0], 3, (const uint32_t[]){ntrain, 2, 3}, ntrain * 6);
    n[1] = make_idx(bufs[1], 1, (const uint32_t[]){ntrain_labels}, 0);
    for (uint32_t i = 0; i < ntrain_labels; i++)
        bufs[1][n[1]++] = (uint8_t)(i % 4);
    n[2] = make_idx(bufs[2], 3, (const uint32_t[]){ntest, 2, test_cols}, ntest * 2 * test_cols);
    n[3] = make_idx(bufs[3], 1, (const uint32_t[]){ntest}, 0);
    for (uint32_t i = 0; i < ntest; i++)
        bufs[3][n[3]++] = 11; // 12 classes
    for (int i = 0; i < 4; i++) {
        snprintf((char *)buf, sizeof buf, "%s/%s", TG_TEST_BUILD_DIR, names[i]);
        write_file((const char *)buf, bufs[i], n[i]);
        free(bufs[i]);
    }
}

START_TEST(test_mnist_tiny_raw)
{
    write_tiny_mnist(5, 5, 3, 3);
    tg_dataset *ds = tg_mnist_load(TG_TEST_BUILD_DIR, TG_F32);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_dataset_count(ds, TG_SPLIT_TRAIN), 5);
    ck_assert_int_eq(tg_dataset_count(ds, TG_SPLIT_TEST), 3);
    ck_assert_int_eq(tg_dataset_num_classes(ds), 12);
    const int64_t *s = tg_tensor_shape(tg_dataset_images(ds, TG_SPLIT_TRAIN));
    ck_assert(s[0] == 5 && s[1] == 1 && s[2] == 2 && s[3] == 3);
    ck_assert_int_eq(tg_dataset_labels(ds, TG_SPLIT_TRAIN)[4], 0);
    tg_dataset_free(ds);
}
END_TEST

START_TEST(test_mnist_errors)
{
    ASSERT_NULL_FAIL(tg_mnist_load(NULL, TG_F32), TG_EINVAL, "tg_mnist_load: NULL dir");
    ASSERT_NULL_FAIL(tg_mnist_load(TG_TEST_DATA_DIR, (tg_dtype)9), TG_EINVAL,
                     "tg_mnist_load: invalid dtype 9");
    const char *missing = scratch("no-such-dir");
    char expect[1400];
    snprintf(expect, sizeof expect, "tg_mnist_load: %s: cannot open train-images-idx3-ubyte.gz "
             "(No such file or directory) or train-images-idx3-ubyte (No such file", missing);
    ASSERT_NULL_FAIL(tg_mnist_load(missing, TG_F32), TG_EIO, expect);

    write_tiny_mnist(5, 4, 3, 3);
    ASSERT_NULL_FAIL(tg_mnist_load(TG_TEST_BUILD_DIR, TG_F32), TG_EFORMAT,
                     "train split has 5 images but 4 labels");
    write_tiny_mnist(5, 5, 3, 4);
    ASSERT_NULL_FAIL(tg_mnist_load(TG_TEST_BUILD_DIR, TG_F32), TG_EFORMAT,
                     "train images are 2x3 but test images 2x4");
    // Images must be N x rows x cols.
    uint8_t flat[64];
    size_t fn = make_idx(flat, 2, (const uint32_t[]){5, 6}, 30);
    snprintf(expect, sizeof expect, "%s/train-images-idx3-ubyte", TG_TEST_BUILD_DIR);
    write_file(expect, flat, fn);
    ASSERT_NULL_FAIL(tg_mnist_load(TG_TEST_BUILD_DIR, TG_F32), TG_EFORMAT,
                     "train-images-idx3-ubyte: expected 3 dims (N x rows x cols), got 2");
    // An IDX error is passed on with the loader's name in front.
    uint8_t buf[64];
    size_t n = make_idx(buf, 1, (const uint32_t[]){3}, 2);
    snprintf((char *)expect, sizeof expect, "%s/t10k-labels-idx1-ubyte", TG_TEST_BUILD_DIR);
    write_tiny_mnist(5, 5, 3, 3);
    write_file(expect, buf, n);
    ASSERT_NULL_FAIL(tg_mnist_load(TG_TEST_BUILD_DIR, TG_F32), TG_EFORMAT,
                     "tg_mnist_load: tg_idx_load: ");
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "t10k-labels-idx1-ubyte: truncated"));
}
END_TEST

/* Every allocation of the loaders may fail: the call then returns NULL with
 * TG_ENOMEM and frees what it had (the ASan job's LeakSanitizer checks). The
 * gzip file is large enough for the size hook to run and grow the buffer. */
START_TEST(test_loaders_out_of_memory)
{
    static uint8_t plain[5000], stored[5200], gz[5300];
    size_t n = make_idx(plain, 3, (const uint32_t[]){3, 40, 40}, 4800);
    size_t sn = make_stored(stored, plain, n);
    size_t gn = make_gzip(gz, 0, stored, sn, plain, n);
    const char *path = scratch("oom.idx.gz");
    write_file(path, gz, gn);
    write_tiny_mnist(5, 5, 3, 3);
    bool idx_through = false, mnist_through = false;
    for (int sticky = 0; sticky < 2; sticky++)
        for (long k = 0; k < 60; k++) {
            tg_clear_error();
            tg__alloc_fail_after(k, sticky);
            tg_idx *idx = tg_idx_load(path);
            tg__alloc_fail_after(-1, 0);
            if (idx) {
                ck_assert_uint_eq(tg_idx_size(idx), 4800);
                ck_assert(memcmp(tg_idx_data(idx), plain + 16, 4800) == 0);
                idx_through |= sticky;
            } else {
                ASSERT_FAIL(tg_last_status(), TG_ENOMEM, "memory");
            }
            tg_idx_free(idx);
            tg_clear_error();
            tg__alloc_fail_after(k, sticky);
            tg_dataset *ds = tg_mnist_load(TG_TEST_BUILD_DIR, TG_F64);
            tg__alloc_fail_after(-1, 0);
            if (ds)
                mnist_through |= sticky;
            else
                ASSERT_FAIL(tg_last_status(), TG_ENOMEM, "memory");
            tg_dataset_free(ds);
        }
    ck_assert_msg(idx_through && mnist_through, "a loader makes more than 60 allocations");
}
END_TEST

/* Issue 8 item 4: the dataset keeps the files' bytes; the float tensor is made
 * on the first tg_dataset_images and kept. */
START_TEST(test_dataset_pixels)
{
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        tg_dataset *ds = tg_mnist_load(TG_TEST_DATA_DIR, dt);
        ck_assert_msg(ds != NULL, "%s", tg_last_error());
        ck_assert_int_eq(tg_dataset_dtype(ds), dt);
        for (int sp = 0; sp < 2; sp++) {
            const int64_t *shape = tg_dataset_shape(ds, (tg_split)sp);
            const uint8_t *px = tg_dataset_pixels(ds, (tg_split)sp);
            ck_assert_ptr_nonnull(px);
            ck_assert(shape[0] == (sp ? 2000 : 8000) && shape[1] == 1 && shape[2] == 28 &&
                      shape[3] == 28);
            tg_tensor *t = tg_dataset_images(ds, (tg_split)sp);
            ck_assert_ptr_nonnull(t);
            ck_assert_ptr_eq(tg_dataset_images(ds, (tg_split)sp), t); // made once, kept
            ck_assert(memcmp(tg_tensor_shape(t), shape, 4 * sizeof *shape) == 0);
            int64_t n = tg_tensor_numel(t), bad = 0, sum = 0;
            for (int64_t i = 0; i < n; i++) {
                double v = d ? ((const double *)tg_tensor_data(t))[i]
                             : ((const float *)tg_tensor_data(t))[i];
                double want = d ? (double)px[i] / 255.0 : (double)((float)px[i] / 255.0f);
                bad += v != want;
                sum += px[i];
            }
            ck_assert_int_eq(bad, 0);
            if (sp == 0)
                ck_assert_int_eq(sum, 209812346); // as test_mnist_real
        }
        tg_dataset_free(ds);
    }
    ASSERT_FRESH_NULL_FAIL(tg_dataset_pixels(NULL, TG_SPLIT_TRAIN), TG_EINVAL,
                           "tg_dataset_pixels: dataset is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_dataset_shape(NULL, TG_SPLIT_TEST), TG_EINVAL,
                           "tg_dataset_shape: dataset is NULL");
    tg_clear_error();
    ck_assert_int_eq(tg_dataset_dtype(NULL), TG_F32);
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_dataset_dtype: dataset is NULL");
    write_tiny_mnist(5, 5, 3, 3);
    tg_dataset *ds = tg_mnist_load(TG_TEST_BUILD_DIR, TG_F32);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    ASSERT_FRESH_NULL_FAIL(tg_dataset_pixels(ds, (tg_split)3), TG_EINVAL,
                           "tg_dataset_pixels: split 3 is neither");
    ASSERT_FRESH_NULL_FAIL(tg_dataset_shape(ds, (tg_split)-2), TG_EINVAL,
                           "tg_dataset_shape: split -2 is neither");
    // Out of memory for the tensor: NULL with TG_ENOMEM, nothing kept, and the
    // next call succeeds.
    tg_clear_error();
    tg__alloc_fail_after(0, 1);
    tg_tensor *t = tg_dataset_images(ds, TG_SPLIT_TEST);
    tg__alloc_fail_after(-1, 0);
    ck_assert_ptr_null(t);
    ASSERT_FAIL(tg_last_status(), TG_ENOMEM, "tg_dataset_images");
    t = tg_dataset_images(ds, TG_SPLIT_TEST);
    ck_assert_msg(t != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_tensor_dim(t, 0), 3);
    tg_dataset_free(ds);
}
END_TEST

/* Issue 11 item 12: a split that is neither train nor test was a silent NULL. */
START_TEST(test_dataset_bad_split)
{
    write_tiny_mnist(5, 5, 3, 3);
    tg_dataset *ds = tg_mnist_load(TG_TEST_BUILD_DIR, TG_F32);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    ASSERT_FRESH_NULL_FAIL(tg_dataset_images(ds, (tg_split)5), TG_EINVAL,
                           "tg_dataset_images: split 5 is neither TG_SPLIT_TRAIN nor");
    ASSERT_FRESH_NULL_FAIL(tg_dataset_labels(ds, (tg_split)-1), TG_EINVAL,
                           "tg_dataset_labels: split -1");
    tg_clear_error();
    ck_assert_int_eq(tg_dataset_count(ds, (tg_split)2), 0);
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_dataset_count: split 2");
    tg_dataset_free(ds);
}
END_TEST

/* ---- batcher ------------------------------------------------------------ */

/* Sample i of a (n, 2) tensor is (i, -i); its label is 100 + i. */
static tg_tensor *index_images(int64_t n, int64_t *labels)
{
    double *v = malloc((size_t)n * 2 * sizeof *v);
    for (int64_t i = 0; i < n; i++) {
        v[2 * i] = (double)i;
        v[2 * i + 1] = -(double)i;
        labels[i] = 100 + i;
    }
    tg_tensor *t = tg_tensor_from_doubles(TG_F32, TG_SHAPE(n, 2), v);
    free(v);
    ck_assert_ptr_nonnull(t);
    return t;
}

/* Runs one epoch, checking each batch's shape and contents, and writes the
 * visited sample indices to order. Returns the number of batches. */
static int64_t run_epoch(tg_batcher *b, int64_t n, int64_t bs, int64_t *order)
{
    tg_tensor *x;
    const int64_t *y;
    int64_t count, seen = 0, batches = 0;
    while (tg_batcher_next(b, &x, &y, &count)) {
        int64_t expect = n - seen < bs ? n - seen : bs;
        ck_assert_int_eq(count, expect);
        ck_assert_int_eq(tg_tensor_ndim(x), 2);
        ck_assert_int_eq(tg_tensor_dim(x, 0), count);
        ck_assert_int_eq(tg_tensor_dim(x, 1), 2);
        const float *px = tg_tensor_data(x);
        for (int64_t r = 0; r < count; r++) {
            ck_assert_int_eq(y[r], 100 + (int64_t)px[2 * r]); // labels follow their images
            ck_assert(px[2 * r + 1] == -px[2 * r]);
            order[seen++] = (int64_t)px[2 * r];
        }
        batches++;
    }
    ck_assert_int_eq(seen, n);
    return batches;
}

/* The documented order: Fisher-Yates on the identity with tg_rng_below. */
static void expected_order(tg_rng *rng, int64_t n, int64_t *order)
{
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)tg_rng_below(rng, (uint64_t)i + 1);
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

START_TEST(test_batcher_shuffle_deterministic)
{
    enum { N = 10, BS = 4 };
    int64_t labels[N], got[N], expect[N], first[N];
    tg_tensor *images = index_images(N, labels);
    tg_batcher *b = tg_batcher_new(images, labels, N, BS, true, 42);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(tg_batcher_num_batches(b), 3);
    tg_rng rng = tg_rng_seeded(42);
    for (int epoch = 0; epoch < 3; epoch++) {
        ck_assert_int_eq(run_epoch(b, N, BS, got), 3);
        expected_order(&rng, N, expect);
        ck_assert(memcmp(got, expect, sizeof got) == 0);
        bool seen[N] = {false};
        for (int i = 0; i < N; i++) {
            ck_assert(!seen[got[i]]); // every index exactly once
            seen[got[i]] = true;
        }
        if (epoch == 0)
            memcpy(first, got, sizeof got);
        else
            ck_assert(memcmp(first, got, sizeof got) != 0); // a new permutation
        ck_assert(!tg_batcher_next(b, NULL, NULL, NULL));   // stays finished
        tg_batcher_reset_epoch(b);
    }
    // The same seed in a second batcher repeats the first epoch.
    tg_batcher *b2 = tg_batcher_new(images, labels, N, BS, true, 42);
    run_epoch(b2, N, BS, got);
    ck_assert(memcmp(got, first, sizeof got) == 0);
    tg_batcher_free(b2);
    tg_batcher_free(b);
    tg_tensor_free(images);
}
END_TEST

START_TEST(test_batcher_sequential)
{
    enum { N = 7 };
    int64_t labels[N], got[N];
    tg_tensor *images = index_images(N, labels);
    tg_batcher *b = tg_batcher_new(images, labels, N, 7, false, 1);
    ck_assert_int_eq(tg_batcher_num_batches(b), 1);
    for (int epoch = 0; epoch < 2; epoch++, tg_batcher_reset_epoch(b)) {
        ck_assert_int_eq(run_epoch(b, N, 7, got), 1);
        for (int i = 0; i < N; i++)
            ck_assert_int_eq(got[i], i);
    }
    tg_batcher_free(b);
    // A batch larger than n gives one batch of n; a subset n < N is allowed.
    b = tg_batcher_new(images, NULL, 5, 100, false, 1);
    tg_tensor *x;
    const int64_t *y = labels;
    int64_t count;
    ck_assert(tg_batcher_next(b, &x, &y, &count));
    ck_assert_int_eq(count, 5);
    ck_assert_ptr_null(y); // no labels given
    ck_assert_int_eq(tg_tensor_dim(x, 0), 5);
    ck_assert(!tg_batcher_next(b, &x, &y, &count));
    tg_batcher_free(b);
    tg_tensor_free(images);
}
END_TEST

START_TEST(test_batcher_mnist)
{
    tg_dataset *ds = tg_mnist_load(TG_TEST_DATA_DIR, TG_F32);
    ck_assert_ptr_nonnull(ds);
    tg_tensor *images = tg_dataset_images(ds, TG_SPLIT_TRAIN);
    const int64_t *labels = tg_dataset_labels(ds, TG_SPLIT_TRAIN);
    tg_batcher *b = tg_batcher_new(images, labels, 8000, 3000, true, 7);
    ck_assert_int_eq(tg_batcher_num_batches(b), 3);
    tg_rng rng = tg_rng_seeded(7);
    int64_t *order = malloc(8000 * sizeof *order);
    expected_order(&rng, 8000, order);
    tg_tensor *x;
    const int64_t *y;
    int64_t count, pos = 0;
    while (tg_batcher_next(b, &x, &y, &count)) {
        ck_assert_int_eq(count, pos < 6000 ? 3000 : 2000);
        const int64_t *s = tg_tensor_shape(x);
        ck_assert(s[0] == count && s[1] == 1 && s[2] == 28 && s[3] == 28);
        // Row r of the batch is image order[pos + r], byte for byte.
        const float *bx = tg_tensor_data(x), *all = tg_tensor_data(images);
        for (int64_t r = 0; r < count; r += 997) {
            ck_assert_int_eq(y[r], labels[order[pos + r]]);
            ck_assert(memcmp(bx + r * 784, all + order[pos + r] * 784, 784 * sizeof *bx) == 0);
        }
        pos += count;
    }
    ck_assert_int_eq(pos, 8000);
    free(order);
    tg_batcher_free(b);
    tg_dataset_free(ds);
}
END_TEST

/* tg_dataset_batcher gives tg_batcher_new's batches over tg_dataset_images,
 * bit for bit, without the float tensor of the split. */
START_TEST(test_dataset_batcher)
{
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        tg_split sp = d ? TG_SPLIT_TEST : TG_SPLIT_TRAIN;
        tg_dataset *ds = tg_mnist_load(TG_TEST_DATA_DIR, dt);
        ck_assert_msg(ds != NULL, "%s", tg_last_error());
        tg_batcher *u8 = tg_dataset_batcher(ds, sp, 300, true, 11);
        ck_assert_msg(u8 != NULL, "%s", tg_last_error());
        tg_batcher *ref = tg_batcher_new(tg_dataset_images(ds, sp), tg_dataset_labels(ds, sp),
                                         tg_dataset_count(ds, sp), 300, true, 11);
        ck_assert_ptr_nonnull(ref);
        ck_assert_int_eq(tg_batcher_num_batches(u8), tg_batcher_num_batches(ref));
        for (int epoch = 0; epoch < 2; epoch++) {
            tg_tensor *x, *rx;
            const int64_t *y, *ry;
            int64_t count, rcount, batches = 0;
            while (tg_batcher_next(u8, &x, &y, &count)) {
                ck_assert(tg_batcher_next(ref, &rx, &ry, &rcount));
                ck_assert_int_eq(count, rcount);
                ck_assert_int_eq(tg_tensor_dtype(x), dt);
                ck_assert(memcmp(tg_tensor_shape(x), tg_tensor_shape(rx),
                                 4 * sizeof(int64_t)) == 0);
                ck_assert(memcmp(tg_tensor_data(x), tg_tensor_data(rx),
                                 (size_t)tg_tensor_numel(x) * tg_dtype_size(dt)) == 0);
                ck_assert(memcmp(y, ry, (size_t)count * sizeof *y) == 0);
                batches++;
            }
            ck_assert(!tg_batcher_next(ref, NULL, NULL, NULL));
            ck_assert_int_eq(batches, tg_batcher_num_batches(ref));
            tg_batcher_reset_epoch(u8);
            tg_batcher_reset_epoch(ref);
        }
        tg_batcher_free(u8);
        tg_batcher_free(ref);
        tg_dataset_free(ds);
    }
    write_tiny_mnist(5, 5, 3, 3);
    tg_dataset *ds = tg_mnist_load(TG_TEST_BUILD_DIR, TG_F32);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    ASSERT_FRESH_NULL_FAIL(tg_dataset_batcher(NULL, TG_SPLIT_TRAIN, 2, false, 1), TG_EINVAL,
                           "tg_dataset_batcher: dataset is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_dataset_batcher(ds, (tg_split)2, 2, false, 1), TG_EINVAL,
                           "tg_dataset_batcher: split 2 is neither");
    ASSERT_FRESH_NULL_FAIL(tg_dataset_batcher(ds, TG_SPLIT_TEST, 0, false, 1), TG_EINVAL,
                           "tg_dataset_batcher: batch_size 0 < 1");
    // Every allocation failing in turn: TG_ENOMEM and nothing leaked, until it goes through.
    bool through = false;
    for (long k = 0; k < 10 && !through; k++) {
        tg_clear_error();
        tg__alloc_fail_after(k, 0);
        tg_batcher *b = tg_dataset_batcher(ds, TG_SPLIT_TRAIN, 2, true, 1);
        tg__alloc_fail_after(-1, 0);
        if (b)
            through = true;
        else
            ASSERT_FAIL(tg_last_status(), TG_ENOMEM, "tg_dataset_batcher");
        tg_batcher_free(b);
    }
    ck_assert(through);
    tg_dataset_free(ds);
}
END_TEST

START_TEST(test_batcher_errors)
{
    int64_t labels[4];
    tg_tensor *images = index_images(4, labels);
    ASSERT_NULL_FAIL(tg_batcher_new(NULL, labels, 4, 2, true, 1), TG_EINVAL,
                     "tg_batcher_new: NULL images");
    ASSERT_NULL_FAIL(tg_batcher_new(images, labels, 5, 2, true, 1), TG_EINVAL,
                     "tg_batcher_new: n 5 outside 1..4");
    ASSERT_NULL_FAIL(tg_batcher_new(images, labels, 0, 2, true, 1), TG_EINVAL, "n 0 outside");
    ASSERT_NULL_FAIL(tg_batcher_new(images, labels, 4, 0, true, 1), TG_EINVAL,
                     "tg_batcher_new: batch_size 0 < 1");
    tg_tensor *scalar = tg_tensor_zeros(TG_F32, 0, NULL);
    ASSERT_NULL_FAIL(tg_batcher_new(scalar, labels, 1, 1, false, 1), TG_EINVAL,
                     "sample dimension");
    tg_clear_error();
    ck_assert(!tg_batcher_next(NULL, NULL, NULL, NULL));
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_batcher_next: NULL batcher");
    ck_assert_int_eq(tg_batcher_num_batches(NULL), 0);
    tg_batcher_reset_epoch(NULL);
    tg_batcher_free(NULL);
    tg_tensor_free(scalar);
    tg_tensor_free(images);
}
END_TEST

/* ---- suite -------------------------------------------------------------- */

static Suite *io_suite(void)
{
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("inflate");
    tcase_add_test(tc, test_crc32_known);
    tcase_add_test(tc, test_inflate_stored);
    tcase_add_test(tc, test_inflate_fixed);
    tcase_add_test(tc, test_inflate_dynamic);
    tcase_add_test(tc, test_inflate_empty);
    tcase_add_test(tc, test_inflate_long_distance);
    tcase_add_test(tc, test_inflate_multi_stored);
    tcase_add_test(tc, test_inflate_trailing_bytes_ignored);
    tcase_add_test(tc, test_inflate_max_out);
    tcase_add_test(tc, test_inflate_null_args);
    tcase_add_test(tc, test_inflate_bad_blocks);
    tcase_add_test(tc, test_inflate_bad_fixed_codes);
    tcase_add_test(tc, test_inflate_bad_dynamic_header);
    tcase_add_test(tc, test_inflate_bad_dynamic_codes);
    tcase_add_test(tc, test_inflate_single_code_ok);
    tcase_add_test(tc, test_inflate_every_prefix_truncated);
    tcase_add_test(tc, test_inflate_random_input);
    suite_add_tcase(s, tc);

    tc = tcase_create("gunzip");
    tcase_add_test(tc, test_gunzip_fname);
    tcase_add_test(tc, test_gunzip_two_members);
    tcase_add_test(tc, test_gunzip_dynamic);
    tcase_add_test(tc, test_gunzip_header_fields);
    tcase_add_test(tc, test_gunzip_bad_crc);
    tcase_add_test(tc, test_gunzip_bad_header);
    tcase_add_test(tc, test_gunzip_trailing_garbage);
    tcase_add_test(tc, test_gunzip_max_out);
    tcase_add_test(tc, test_gunzip_every_prefix_truncated);
    tcase_add_test(tc, test_gunzip_byte_flips);
    tcase_add_test(tc, test_gunzip_stream_same_as_memory);
    tcase_add_test(tc, test_gunzip_stream_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("idx");
    tcase_add_test(tc, test_idx_raw);
    tcase_add_test(tc, test_idx_gzip);
    tcase_add_test(tc, test_idx_size_mismatch);
    tcase_add_test(tc, test_idx_bad_magic);
    tcase_add_test(tc, test_idx_huge_dims);
    tcase_add_test(tc, test_idx_dims_one_rule);
    tcase_add_test(tc, test_idx_gzip_bomb);
    tcase_add_test(tc, test_idx_not_regular);
    tcase_add_test(tc, test_idx_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("mnist");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_mnist_real);
    tcase_add_test(tc, test_mnist_f64);
    tcase_add_test(tc, test_mnist_tiny_raw);
    tcase_add_test(tc, test_mnist_errors);
    tcase_add_test(tc, test_loaders_out_of_memory);
    tcase_add_test(tc, test_dataset_bad_split);
    tcase_add_test(tc, test_dataset_pixels);
    suite_add_tcase(s, tc);

    tc = tcase_create("batcher");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_batcher_shuffle_deterministic);
    tcase_add_test(tc, test_batcher_sequential);
    tcase_add_test(tc, test_batcher_mnist);
    tcase_add_test(tc, test_batcher_errors);
    tcase_add_test(tc, test_dataset_batcher);
    suite_add_tcase(s, tc);
    return s;
}

TG_CHECK_MAIN(io_suite)
