// The explicit instantiations that common/float_network.hpp declares extern.
#define BNORM_EXAMPLE_FLOAT_NETWORK_DEFINE
#include "float_network.hpp"
