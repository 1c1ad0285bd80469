/* content.h - what a body is, by its first bytes: download_link's --content image check.
 *
 * A server's Content-Type is a claim; the first bytes of the body are what a viewer will
 * parse. An error page served with status 200, a login form behind a redirect, a script
 * named x.jpg: each starts with bytes no image starts with. These functions look at those
 * bytes only; they do not decode the image.
 */
#ifndef CQ_CONTENT_H
#define CQ_CONTENT_H

#include <stddef.h>

/* The bytes content_image_type needs to decide about any format; fewer is fine when the
 * body is shorter. */
#define CONTENT_SNIFF_LEN 32

/* The format whose signature the n bytes at p start with ("JPEG", "PNG", ...), or NULL when
 * they start no image of JPEG, PNG, GIF, WebP, BMP, TIFF, ICO, AVIF/HEIF or JPEG XL. SVG is
 * text (and may carry script), so it is not an image here. */
const char *content_image_type(const unsigned char *p, size_t n);

/* How the n bytes at p start, for an error message: "an empty body", "starts with
 * \"<!DOCTYPE html\"" for text (up to 16 characters, to the first line break), "starts
 * with bytes 00 01 7f ..." otherwise. */
void content_describe(const unsigned char *p, size_t n, char *buf, size_t len);

#endif
