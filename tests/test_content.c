/* test_content.c - app/content.c: which first bytes are an image's, and how the others are
 * described in download_link's "not an image (...)" error. The end-to-end check (a text/html
 * body served as x.jpg fails, nothing saved) is in tests/test_netpolicy.sh.
 */
#include <stdio.h>
#include <string.h>

#include "content.h"

#include "check.h"

#define B(s) (const unsigned char *)(s), sizeof(s) - 1

static void test_images(void)
{
    /* The first bytes of real files of each format. */
    CHECK_STREQ(content_image_type(B("\xff\xd8\xff\xe0\x00\x10JFIF\x00")), "JPEG");
    CHECK_STREQ(content_image_type(B("\xff\xd8\xff\xe1\x12\x34"
                                     "Exif\x00\x00")),
                "JPEG");
    CHECK_STREQ(content_image_type(B("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR")), "PNG");
    CHECK_STREQ(content_image_type(B("GIF89a\x01\x00\x01\x00")), "GIF");
    CHECK_STREQ(content_image_type(B("GIF87a")), "GIF");
    CHECK_STREQ(content_image_type(B("RIFF\x24\x00\x00\x00WEBPVP8 ")), "WebP");
    CHECK_STREQ(content_image_type(B("BM\x36\x00\x0c\x00\x00\x00\x00\x00\x36\x00\x00\x00"
                                     "\x28\x00\x00\x00")),
                "BMP");
    CHECK_STREQ(content_image_type(B("BM\x1a\x00\x00\x00\x00\x00\x00\x00\x1a\x00\x00\x00"
                                     "\x0c\x00\x00\x00")),
                "BMP");
    CHECK_STREQ(content_image_type(B("II*\x00\x08\x00\x00\x00")), "TIFF");
    CHECK_STREQ(content_image_type(B("MM\x00*\x00\x00\x00\x08")), "TIFF");
    CHECK_STREQ(content_image_type(B("\x00\x00\x01\x00\x01\x00\x10\x10")), "ICO");
    CHECK_STREQ(content_image_type(B("\x00\x00\x00\x1c"
                                     "ftypavif\x00\x00\x00\x00")),
                "AVIF");
    CHECK_STREQ(content_image_type(B("\x00\x00\x00\x18"
                                     "ftypheic\x00\x00\x00\x00")),
                "HEIF");
    CHECK_STREQ(content_image_type(B("\x00\x00\x00\x18"
                                     "ftypmif1\x00\x00\x00\x00")),
                "HEIF");
    CHECK_STREQ(content_image_type(B("\xff\x0a\xfa\x7f")), "JPEG XL");
    CHECK_STREQ(content_image_type(B("\x00\x00\x00\x0cJXL \r\n\x87\n")), "JPEG XL");
}

static void test_not_images(void)
{
    CHECK(content_image_type(B("")) == NULL);
    CHECK(content_image_type(B("<!DOCTYPE html><html>")) == NULL);
    CHECK(content_image_type(B("<svg xmlns=\"http://www.w3.org/2000/svg\"/>")) == NULL);
    CHECK(content_image_type(B("{\"error\":\"not found\"}")) == NULL);
    CHECK(content_image_type(B("\xff\xd8")) == NULL);        /* too short for JPEG */
    CHECK(content_image_type(B("\x89PNG\r\n\x1a")) == NULL); /* cut signature */
    CHECK(content_image_type(B("GIF89b")) == NULL);
    CHECK(content_image_type(B("RIFF\x24\x00\x00\x00WAVEfmt ")) == NULL); /* audio */
    CHECK(content_image_type(B("BMW is a car maker, not a bitmap")) == NULL);
    CHECK(content_image_type(B("BM\x36\x00\x0c\x00\x00\x00\x00\x00\x36\x00\x00\x00"
                               "\x29\x00\x00\x00")) == NULL);         /* no such header size */
    CHECK(content_image_type(B("\x00\x00\x01\x00\x00\x00")) == NULL); /* ICO of 0 images */
    CHECK(content_image_type(B("\x00\x00\x00\x18"
                               "ftypisom\x00\x00\x02\x00")) == NULL); /* MP4 */
    CHECK(content_image_type(B("%PDF-1.7\n")) == NULL);
    CHECK(content_image_type(B("PK\x03\x04")) == NULL);
    CHECK(content_image_type(B("\x7f"
                               "ELF\x02\x01\x01")) == NULL);
}

static void test_describe(void)
{
    char buf[128];

    content_describe(B("<!DOCTYPE html>\n<html><head>"), buf, sizeof buf);
    CHECK_STREQ(buf, "starts with \"<!DOCTYPE html>\"");
    content_describe(B("<!DOCTYPE html><html><head><title>"), buf, sizeof buf);
    CHECK_STREQ(buf, "starts with \"<!DOCTYPE html><\""); /* 16 characters */
    content_describe(B("not found"), buf, sizeof buf);
    CHECK_STREQ(buf, "starts with \"not found\"");
    content_describe(B("\tjson"), buf, sizeof buf);
    CHECK_STREQ(buf, "starts with \" json\"");
    content_describe(B(""), buf, sizeof buf);
    CHECK_STREQ(buf, "an empty body");
    content_describe(B("\x00\x01\x7f\xff\x10\x20\x30\x40\x50\x60"), buf, sizeof buf);
    CHECK_STREQ(buf, "starts with bytes 00 01 7f ff 10 20 30 40");
    content_describe(B("ab\x01"
                       "cd"),
                     buf, sizeof buf);
    CHECK_STREQ(buf, "starts with bytes 61 62 01 63 64");
    content_describe(B("\n\nx"), buf, sizeof buf);
    CHECK_STREQ(buf, "starts with bytes 0a 0a 78");
    /* A short buffer is cut, never overrun. */
    content_describe(B("\x00\x01\x02\x03\x04\x05\x06\x07"), buf, 12);
    CHECK_EQ(strlen(buf), 11);
}

int main(void)
{
    test_images();
    test_not_images();
    test_describe();
    return check_report();
}
