#include "coord.h"
