// zlib, for gzip-compressed datasets (Debian: zlib1g-dev).
#include <zlib.h>
