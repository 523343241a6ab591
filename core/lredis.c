/* Being built (issue 12). */
#include <stddef.h>
