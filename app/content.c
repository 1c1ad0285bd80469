/* content.c - image signatures (see content.h).
 *
 * Each format is recognised by the fixed bytes its specification puts at the start of the
 * file, the same ones file(1)'s magic uses, and no shorter: "BM" alone would accept any text
 * that starts with those two letters, so a BMP must also carry a known header size at offset
 * 14, and an ICO a non-zero image count. ISO base media files (AVIF, HEIF) are recognised by
 * their ftyp box's major brand.
 */
#include "content.h"

#include <stdio.h>
#include <string.h>

static int starts(const unsigned char *p, size_t n, const void *sig, size_t len)
{
    return n >= len && memcmp(p, sig, len) == 0;
}

static unsigned long le32(const unsigned char *p)
{
    return (unsigned long)p[0] | (unsigned long)p[1] << 8 | (unsigned long)p[2] << 16 |
        (unsigned long)p[3] << 24;
}

static int is_bmp(const unsigned char *p, size_t n)
{
    unsigned long hs;

    if (n < 18 || p[0] != 'B' || p[1] != 'M') return 0;
    hs = le32(p + 14); /* BITMAPCOREHEADER .. BITMAPV5HEADER */
    return hs == 12 || hs == 40 || hs == 52 || hs == 56 || hs == 64 || hs == 108 || hs == 124;
}

static int is_ico(const unsigned char *p, size_t n)
{
    return n >= 6 && p[0] == 0 && p[1] == 0 && (p[2] == 1 || p[2] == 2) && p[3] == 0 &&
        (p[4] != 0 || p[5] != 0);
}

/* An ISO base media file whose major brand is an image one. */
static const char *heif_type(const unsigned char *p, size_t n)
{
    static const char *const avif[] = {"avif", "avis"};
    static const char *const heif[] = {"heic", "heix", "hevc", "hevx",
                                       "heim", "heis", "mif1", "msf1"};

    if (n < 12 || memcmp(p + 4, "ftyp", 4) != 0) return NULL;
    for (size_t i = 0; i < sizeof avif / sizeof avif[0]; i++) {
        if (memcmp(p + 8, avif[i], 4) == 0) return "AVIF";
    }
    for (size_t i = 0; i < sizeof heif / sizeof heif[0]; i++) {
        if (memcmp(p + 8, heif[i], 4) == 0) return "HEIF";
    }
    return NULL;
}

const char *content_image_type(const unsigned char *p, size_t n)
{
    static const unsigned char jpeg[] = {0xff, 0xd8, 0xff};
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const unsigned char jxl_box[] = {0,   0,   0,    0x0c, 'J',  'X',
                                            'L', ' ', '\r', '\n', 0x87, '\n'};
    static const unsigned char jxl_code[] = {0xff, 0x0a};

    if (starts(p, n, jpeg, sizeof jpeg)) return "JPEG";
    if (starts(p, n, png, sizeof png)) return "PNG";
    if (starts(p, n, "GIF87a", 6) || starts(p, n, "GIF89a", 6)) return "GIF";
    if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0) return "WebP";
    if (is_bmp(p, n)) return "BMP";
    if (starts(p, n, "II*\0", 4) || starts(p, n, "MM\0*", 4) || starts(p, n, "II+\0", 4) ||
        starts(p, n, "MM\0+", 4))
        return "TIFF";
    if (is_ico(p, n)) return "ICO";
    if (starts(p, n, jxl_box, sizeof jxl_box) || starts(p, n, jxl_code, sizeof jxl_code))
        return "JPEG XL";
    return heif_type(p, n);
}

void content_describe(const unsigned char *p, size_t n, char *buf, size_t len)
{
    size_t i, text = 0, used;

    if (len == 0) return;
    if (n == 0) {
        snprintf(buf, len, "an empty body");
        return;
    }
    /* Text up to the first line break (at most 16 characters), when it is text. */
    while (text < n && text < 16 && p[text] != '\r' && p[text] != '\n') {
        if ((p[text] < 0x20 && p[text] != '\t') || p[text] >= 0x7f) break;
        text++;
    }
    if (text > 0 && (text == n || text == 16 || p[text] == '\r' || p[text] == '\n')) {
        snprintf(buf, len, "starts with \"%.*s\"", (int)text, (const char *)p);
        for (i = 0; buf[i] != '\0'; i++) {
            if (buf[i] == '\t') buf[i] = ' ';
        }
        return;
    }
    used = (size_t)snprintf(buf, len, "starts with bytes");
    for (i = 0; i < n && i < 8 && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, " %02x", p[i]);
}
