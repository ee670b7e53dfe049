/* tapegrad.h - the whole public API: include this one header. */
#ifndef TAPEGRAD_H
#define TAPEGRAD_H

#include "status.h"
#include "tensor.h"
#include "autograd.h"
#include "ops.h"
#include "nn_ops.h"
#include "io.h"
#include "nn.h"
#include "optim.h"
#include "checkpoint.h"
#include "train.h"
#include "runtime.h"

#endif
