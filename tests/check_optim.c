/* check_optim.c - the optim suite: SGD, Adam, AdamW (both forms), RMSprop
 * against PyTorch's numbers and a long-double reference, learning-rate
 * schedules, gradient clipping, state inspection and restore, error paths,
 * and minimising a quadratic through the tape with every optimizer.
 *
 * torch_f64 / torch_f32 below were produced with torch 1.13 (/usr/bin/python3)
 * by this script; grad() and the configs are mirrored by grad_value() and
 * make_config() here:
 *
 *   def grad(t, i, off): return (((i*7 + t*3 + off) % 11) - 5) * 0.13 + 0.01*t
 *   p = tensor([0.5 - 0.3*i for i in range(6)]).reshape(2, 3)    # param 0
 *   q = tensor([1.0, -2.0, 0.25, 3.0])                            # param 1
 *   opt = CONFIG([p, q])              # e.g. torch.optim.SGD([p, q], lr=0.1)
 *   for t in 1..5:
 *       p.grad = tensor([grad(t, i, 0) for i in range(6)]).reshape(2, 3)
 *       q.grad = None if t == 3 else tensor([grad(t, i, 5) for i in range(4)])
 *       opt.step()
 *       row t = p.flatten() ++ q        (printed with %.17g, f32 with %.9g)
 *
 * once in float64 and once in float32 (values made in float64, then .to()).
 * q has no gradient at step 3, so its per-parameter step count lags by one:
 * that checks the skip rule and Adam's bias correction per parameter.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim/adam_internal.h"
#include "tapegrad/tapegrad.h"
#include "tg_internal.h" /* only to take a grad away for one step (torch's p.grad = None) */
#include "tg_check.h"

/* |got - want| <= atol + rtol * |want| */
#define ASSERT_CLOSE(got, want, atol, rtol)                                                  \
    do {                                                                                     \
        double g_ = (got), w_ = (want);                                                      \
        ck_assert_msg(fabs(g_ - w_) <= (atol) + (rtol) * fabs(w_),                           \
                      "%s = %.17g, expected %.17g (diff %.3g)", #got, g_, w_, g_ - w_);      \
    } while (0)

enum { N_CONFIGS = 9, N_STEPS = 5, N_P = 6, N_Q = 4, N_VALUES = N_P + N_Q };

/* ---- PyTorch's numbers (see the top of the file) ------------------------- */

static const double torch_f64[N_CONFIGS][N_STEPS][N_VALUES] = {
    /* sgd plain */ {
        {0.52500000000000002, 0.13400000000000001, -0.11399999999999998, -0.36199999999999993,
         -0.753, -1.0009999999999999, 0.95999999999999996, -1.988,
         0.314, 2.9729999999999999},
        {0.51000000000000001, 0.17100000000000001, -0.16799999999999998, -0.36399999999999993,
         -0.70299999999999996, -1.0419999999999998, 1.0229999999999999, -2.016,
         0.33800000000000002, 2.9059999999999997},
        {0.45500000000000002, 0.16800000000000001, -0.11899999999999998, -0.40599999999999992,
         -0.69299999999999995, -0.97999999999999976, 1.0229999999999999, -2.016,
         0.33800000000000002, 2.9059999999999997},
        {0.503, 0.125, -0.10999999999999999, -0.34499999999999992,
         -0.72299999999999998, -0.95799999999999974, 1.006, -1.9810000000000001,
         0.28200000000000003, 2.9019999999999997},
        {0.51100000000000001, 0.185, -0.14099999999999999, -0.3239999999999999,
         -0.79300000000000004, -0.97599999999999976, 0.94899999999999995, -1.986,
         0.32900000000000001, 2.8579999999999997},
    },
    /* sgd momentum */ {
        {0.51224999999999998, 0.16690000000000002, -0.10694999999999998, -0.38079999999999992,
         -0.72614999999999996, -1, 0.97950000000000004, -1.9930000000000001,
         0.28187499999999999, 2.9849999999999999},
        {0.51629448749999995, 0.15368489500000002, -0.13745687249999999, -0.3642486399999999,
         -0.72685823249999992, -1.018, 0.988959225, -1.9984031500000001,
         0.32123565625, 2.9400067499999998},
        {0.49495219373062493, 0.14037214229725001, -0.14280120215737499, -0.36808850411199989,
         -0.7226685555453749, -1.0058419000000001, 0.988959225, -1.9984031500000001,
         0.32123565625, 2.9400067499999998},
        {0.49712140085100864, 0.10897749740074124, -0.14349683830804166, -0.34392874198594947,
         -0.73207264543621697, -0.98454698114500006, 0.98937749584875001, -1.9866167035825002,
         0.33131569082968748, 2.8963898219624999},
        {0.502449982628971, 0.10767327712005302, -0.15800833726640306, -0.31258018813861044,
         -0.77170689364752854, -0.97303850803398484, 0.96365871973949302, -1.9773649242901381,
         0.36138862989053289, 2.8360312113088666},
    },
    /* sgd nesterov */ {
        {0.52137500000000003, 0.13635, -0.11282499999999998, -0.36199999999999993,
         -0.74702499999999994, -0.99619999999999997, 0.95725000000000005, -1.9791000000000001,
         0.30961250000000001, 2.9601000000000002},
        {0.51376096874999999, 0.14371733749999999, -0.16905658125, -0.34598049999999991,
         -0.71602413124999997, -1.02879805, 0.99432806250000005, -1.9873892750000002,
         0.35635559062500005, 2.8653795250000003},
        {0.46014106977343749, 0.13047207139687497, -0.1482658418640625, -0.36973404262499993,
         -0.69940304100156248, -0.97814095426250003, 0.99432806250000005, -1.9873892750000002,
         0.35635559062500005, 2.8653795250000003},
        {0.48120345279279492, 0.078754953574302317, -0.14273029097567697, -0.31328445041003117,
         -0.71573294962852385, -0.93721819417850316, 0.98062907295312507, -1.9440124984437501,
         0.33342831125703132, 2.7995307697562501},
        {0.48490919851644104, 0.10847902366515196, -0.17090392443818966, -0.2693236178730179,
         -0.78160379272430713, -0.92513674082764874, 0.91937923240503516, -1.9207109660442674,
         0.38186177542629479, 2.6934162228117828},
    },
    /* adam */ {
        {0.5999999960000002, 0.10000000151515151, -0.19999999285714337, -0.30000000263157878,
         -0.79999999811320754, -1.0999999000001, 0.9000000024999999, -1.9000000083333326,
         0.34999999843750002, 2.9000000037037035},
        {0.61914979859371932, 0.077961688596413739, -0.2888425186226537, -0.23699993347911824,
         -0.79765042380669271, -1.1760244638812121, 0.92692714939107601, -1.9420185458693056,
         0.43887548431012496, 2.8059406766566997},
        {0.56962551042505694, 0.058406329594848781, -0.29825768060689417, -0.25168219176273943,
         -0.78715864911660205, -1.1551477392933585, 0.92692714939107601, -1.9420185458693056,
         0.43887548431012496, 2.8059406766566997},
        {0.57300921223038859, 0.01575578697218958, -0.29891552585031489, -0.21727169705763344,
         -0.80117488372197798, -1.1222494043855653, 0.93302375592321263, -1.9151378772233161,
         0.45149069741896924, 2.7298099080320304},
        {0.58138264743058643, 0.017067574054400313, -0.32033836936850996, -0.17571993890353052,
         -0.84615487914004484, -1.1075150314751285, 0.90229223945523729, -1.8994764643815256,
         0.48792432467597574, 2.6463232935531642},
    },
    /* adam l2 */ {
        {0.54975124378109452, 0.15007342143906022, -0.149618320610687, -0.35011876484560561,
         -0.7498915401301518, -0.9505494505494505, 0.95009980039920161, -1.9501557632398754,
         0.29991883116883117, 2.9500875656742558},
        {0.54361259591471889, 0.14039797201782267, -0.19508400698216141, -0.31733670007952375,
         -0.73887606840316078, -0.97949945424180063, 0.95732639140624654, -1.9299072579131036,
         0.34234643892335176, 2.9004035344255983},
        {0.50983990290694492, 0.13136376962100388, -0.19478549989399746, -0.32398492244463778,
         -0.72296183898764865, -0.95609706537926564, 0.95732639140624654, -1.9299072579131036,
         0.34234643892335176, 2.9004035344255983},
        {0.50630976039275732, 0.10845860175740653, -0.18963428552515058, -0.3021882576806455,
         -0.72107942660750468, -0.92696036495706224, 0.95014459459595235, -1.8921615262922842,
         0.3410337180465588, 2.8558733982527058},
        {0.50475725337748989, 0.11187979414639941, -0.19785436100302833, -0.27675885910164888,
         -0.74056279011790849, -0.90753557967510468, 0.92405028912168041, -1.8567362646671093,
         0.35514245654519044, 2.8091525746248007},
    },
    /* adamw */ {
        {0.5949999960000002, 0.098000001515151508, -0.19899999285714337, -0.29600000263157877,
         -0.79299999811320754, -1.0899999000000999, 0.89000000249999989, -1.8800000083333326,
         0.34749999843750001, 2.8700000037037032},
        {0.60819979863371931, 0.074981688581262224, -0.28585251869408229, -0.23003993345280244,
         -0.78272042382556062, -1.1551244648812111, 0.90802714936607598, -1.9032185457859723,
         0.43290048432574996, 2.7472406766196622},
        {0.55259351247871968, 0.054676512693884648, -0.29240915549138191, -0.24242179240189562,
         -0.7644014448972144, -1.1226964956445453, 0.90802714936607598, -1.9032185457859723,
         0.43290048432574996, 2.7472406766196622},
        {0.55045127915926417, 0.0114792049442866, -0.29014290917988883, -0.20558707977277069,
         -0.77077366505361822, -1.0785711957803068, 0.90504348440455185, -1.8573056916821231,
         0.44118669259133675, 2.6436375012287963},
        {0.55332020156786932, 0.012676199977054468, -0.30866432360628498, -0.16197945082094006,
         -0.80804592382114893, -1.053051110912067, 0.86526153309253095, -1.8230712219235115,
         0.47320845292242986, 2.5337145117376423},
    },
    /* rmsprop */ {
        {0.59999996000001599, 0.1000000151515129, -0.19999992857147952, -0.30000002631578249,
         -0.79999998113207893, -1.0999990000099999, 0.90000002499999376, -1.900000083333264,
         0.3499999843750024, 2.9000000370370236},
        {0.54836019982835549, 0.14908768920153395, -0.29683009862450666, -0.30528231270585282,
         -0.73119568418327785, -1.1999695418765286, 0.98454283028876632, -1.9919859521932561,
         0.38526725998551187, 2.8071833012635015},
        {0.45983816506451169, 0.14509075309139449, -0.23063769747982316, -0.37972389331404671,
         -0.71749590017185827, -1.1164383765692625, 0.98454283028876632, -1.9919859521932561,
         0.38526725998551187, 2.8071833012635015},
        {0.5211667561449832, 0.095192829682947844, -0.21850887001829272, -0.30614117698813642,
         -0.75567353786825275, -1.0878888006937728, 0.96219465797181947, -1.9163673971749364,
         0.32153507525645736, 2.8016227043132735},
        {0.53138590033717958, 0.15252573722955434, -0.25722235017635597, -0.28146885678879341,
         -0.82237629189271388, -1.110743849085355, 0.90203649637539307, -1.9271610404102948,
         0.36888552417880577, 2.7492523590866238},
    },
    /* rmsprop mom ctr */ {
        {0.53333277778703692, 0.16666683006455851, -0.13333247865439346, -0.36666693121483152,
         -0.73333309178918993, -0.96666790118884482, 0.96666688888740737, -1.966667013885272,
         0.28333315266583919, 2.9666668615973006},
        {0.52687096153691126, 0.16528591942554646, -0.18323101525495011, -0.34860891358198193,
         -0.72477512054970927, -0.98132392561177739, 0.97364561997763077, -1.9585540498454292,
         0.31171099739283747, 2.9195519375543908},
        {0.49327507885537897, 0.16247453996381797, -0.18591499262603617, -0.36214243578821392,
         -0.71268052125986769, -0.95895392509244803, 0.97364561997763077, -1.9585540498454292,
         0.31171099739283747, 2.9195519375543908},
        {0.49446349302686093, 0.14270698158820558, -0.18230638587073375, -0.3433965702532335,
         -0.71686959196800382, -0.93475770538902014, 0.96548052635878323, -1.9246233233620145,
         0.30347911987486681, 2.8851534109250285},
        {0.4964005219825241, 0.15215224314262529, -0.19339640557882934, -0.32410912456205249,
         -0.74102742030929358, -0.92633335574463915, 0.93854594432047056, -1.8994981013534764,
         0.31498516781112573, 2.8462652980218723},
    },
    /* rmsprop centered */ {
        {0.70100748224379394, -0.0010075324427254728, -0.30100741875180159, -0.19899249011135461,
         -0.90100752493483027, -1.2010055428701258, 0.79899248745319551, -1.7989926052981851,
         0.45100753148619077, 2.7989925117704271},
        {0.59766973191509365, 0.097237281997210878, -0.49611762625318617, -0.20960412684048765,
         -0.76339813615203866, -1.4020028874711667, 0.96816152413494283, -1.9832228618364676,
         0.52213055672124886, 2.6117740698533463},
        {0.42015221150993531, 0.089236557970632832, -0.36369287702674569, -0.35849790072623566,
         -0.7359971005195507, -1.2348772367500862, 0.96816152413494283, -1.9832228618364676,
         0.52213055672124886, 2.6117740698533463},
        {0.54281035951620948, -0.010926724488606696, -0.33943343781766888, -0.21101538896001298,
         -0.81238375366134408, -1.1776921668855127, 0.92346371105940916, -1.8318576104060567,
         0.394589397200789, 2.6005508110670728},
        {0.56325069344863055, 0.10374795030700401, -0.41695674284185402, -0.16147915663663398,
         -0.94630821229365891, -1.2234231554332948, 0.80297343300417534, -1.8534545530388238,
         0.48957788803990976, 2.4943287717379352},
    },
};
static const double torch_f32[N_CONFIGS][N_STEPS][N_VALUES] = {
    /* sgd plain */ {
        {0.524999976, 0.134000003, -0.114, -0.362000018,
         -0.752999961, -1.00100005, 0.959999979, -1.98800004,
         0.31400001, 2.97300005},
        {0.50999999, 0.171000004, -0.167999998, -0.364000022,
         -0.702999949, -1.04200006, 1.023, -2.01600003,
         0.338, 2.90600014},
        {0.454999983, 0.167999998, -0.118999995, -0.406000018,
         -0.692999959, -0.980000079, 1.023, -2.01600003,
         0.338, 2.90600014},
        {0.502999961, 0.125, -0.109999992, -0.345000029,
         -0.72299999, -0.958000064, 1.00600004, -1.98100007,
         0.282000005, 2.90200019},
        {0.510999978, 0.185000002, -0.140999988, -0.324000031,
         -0.792999983, -0.976000071, 0.949000061, -1.98600006,
         0.328999996, 2.85800028},
    },
    /* sgd momentum */ {
        {0.512250006, 0.166900009, -0.10695, -0.380800009,
         -0.726149976, -1, 0.979499996, -1.99300003,
         0.281875014, 2.9849999},
        {0.516294479, 0.153684899, -0.137456879, -0.364248663,
         -0.726858199, -1.01800001, 0.988959193, -1.99840319,
         0.321235657, 2.94000673},
        {0.494952172, 0.140372142, -0.14280121, -0.368088514,
         -0.722668529, -1.00584185, 0.988959193, -1.99840319,
         0.321235657, 2.94000673},
        {0.497121364, 0.108977497, -0.143496841, -0.343928754,
         -0.732072592, -0.984546959, 0.989377439, -1.98661673,
         0.331315696, 2.89638972},
        {0.50244993, 0.10767328, -0.158008337, -0.312580198,
         -0.77170682, -0.973038495, 0.96365869, -1.9773649,
         0.361388624, 2.8360312},
    },
    /* sgd nesterov */ {
        {0.521375, 0.136350006, -0.112824999, -0.362000018,
         -0.747025013, -0.996200025, 0.957249999, -1.97909999,
         0.309612513, 2.96009994},
        {0.513760984, 0.143717349, -0.169056594, -0.345980525,
         -0.71602416, -1.0287981, 0.994328082, -1.98738921,
         0.356355608, 2.86537957},
        {0.460141093, 0.130472079, -0.148265854, -0.369734079,
         -0.699403048, -0.97814101, 0.994328082, -1.98738921,
         0.356355608, 2.86537957},
        {0.481203467, 0.0787549615, -0.142730296, -0.313284487,
         -0.715732932, -0.937218249, 0.980629086, -1.9440124,
         0.333428323, 2.79953074},
        {0.484909207, 0.108479038, -0.170903936, -0.269323647,
         -0.781603754, -0.925136805, 0.919379234, -1.92071092,
         0.381861776, 2.69341612},
    },
    /* adam */ {
        {0.599999964, 0.100000009, -0.199999988, -0.300000012,
         -0.799999952, -1.0999999, 0.899999976, -1.89999998,
         0.349999994, 2.9000001},
        {0.619149745, 0.0779616907, -0.288842529, -0.236999929,
         -0.797650397, -1.17602444, 0.926927149, -1.94201851,
         0.438875496, 2.80594087},
        {0.569625437, 0.0584063306, -0.298257679, -0.251682192,
         -0.787158608, -1.15514767, 0.926927149, -1.94201851,
         0.438875496, 2.80594087},
        {0.573009133, 0.0157557838, -0.298915535, -0.217271701,
         -0.801174819, -1.12224936, 0.933023751, -1.91513789,
         0.4514907, 2.72981},
        {0.581382573, 0.0170675721, -0.320338368, -0.175719947,
         -0.846154809, -1.10751498, 0.902292252, -1.89947653,
         0.487924337, 2.64632344},
    },
    /* adam l2 */ {
        {0.549751222, 0.150073424, -0.149618328, -0.350118756,
         -0.74989152, -0.950549424, 0.950099826, -1.95015574,
         0.29991883, 2.95008755},
        {0.543612599, 0.140397966, -0.19508402, -0.317336679,
         -0.738876045, -0.9794994, 0.957326412, -1.9299072,
         0.34234643, 2.9004035},
        {0.509839892, 0.131363764, -0.19478552, -0.323984891,
         -0.722961843, -0.956097007, 0.957326412, -1.9299072,
         0.34234643, 2.9004035},
        {0.506309748, 0.108458593, -0.189634308, -0.302188218,
         -0.721079409, -0.926960289, 0.950144589, -1.89216149,
         0.341033697, 2.85587335},
        {0.504757226, 0.111879788, -0.197854385, -0.27675882,
         -0.740562797, -0.907535493, 0.924050272, -1.85673618,
         0.355142444, 2.8091526},
    },
    /* adamw */ {
        {0.594999969, 0.0980000049, -0.199000001, -0.296000004,
         -0.792999983, -1.08999991, 0.889999986, -1.88,
         0.347499996, 2.87000012},
        {0.608199775, 0.0749816895, -0.285852522, -0.230039924,
         -0.782720447, -1.15512443, 0.908027172, -1.90321851,
         0.432900488, 2.74724102},
        {0.55259347, 0.0546765104, -0.292409152, -0.242421791,
         -0.764401436, -1.1226964, 0.908027172, -1.90321851,
         0.432900488, 2.74724102},
        {0.550451219, 0.0114791989, -0.290142924, -0.205587089,
         -0.770773649, -1.07857108, 0.905043483, -1.85730577,
         0.441186696, 2.64363766},
        {0.553320169, 0.0126761952, -0.308664322, -0.161979467,
         -0.808045924, -1.05305099, 0.865261555, -1.82307136,
         0.473208457, 2.53371477},
    },
    /* rmsprop */ {
        {0.599999964, 0.100000016, -0.199999928, -0.300000042,
         -0.799999952, -1.09999895, 0.900000036, -1.9000001,
         0.349999964, 2.9000001},
        {0.548360229, 0.149087697, -0.296830088, -0.305282325,
         -0.731195629, -1.19996953, 0.984542847, -1.99198592,
         0.385267258, 2.80718327},
        {0.459838212, 0.145090759, -0.230637684, -0.379723907,
         -0.717495859, -1.11643839, 0.984542847, -1.99198592,
         0.385267258, 2.80718327},
        {0.521166801, 0.0951928347, -0.218508855, -0.306141198,
         -0.755673528, -1.08788884, 0.962194681, -1.91636741,
         0.321535081, 2.80162263},
        {0.531385958, 0.152525753, -0.257222325, -0.281468868,
         -0.822376251, -1.11074388, 0.902036548, -1.9271611,
         0.368885517, 2.74925232},
    },
    /* rmsprop mom ctr */ {
        {0.533332765, 0.166666836, -0.133332476, -0.366666943,
         -0.733333051, -0.966667891, 0.966666877, -1.96666706,
         0.283333153, 2.96666694},
        {0.526870966, 0.16528593, -0.183231011, -0.348608911,
         -0.724775076, -0.981323898, 0.973645627, -1.95855415,
         0.311710984, 2.91955209},
        {0.493275076, 0.162474558, -0.185914993, -0.362142444,
         -0.712680459, -0.958953917, 0.973645627, -1.95855415,
         0.311710984, 2.91955209},
        {0.494463503, 0.142707005, -0.182306379, -0.343396574,
         -0.716869533, -0.93475771, 0.965480506, -1.92462337,
         0.303479105, 2.88515353},
        {0.496400535, 0.15215227, -0.193396404, -0.324109137,
         -0.741027355, -0.926333368, 0.938545942, -1.89949811,
         0.314985156, 2.84626532},
    },
    /* rmsprop centered */ {
        {0.701007485, -0.00100752711, -0.30100742, -0.198992506,
         -0.901007533, -1.20100558, 0.798992515, -1.79899263,
         0.451007545, 2.7989924},
        {0.597669721, 0.097237289, -0.496117622, -0.209604144,
         -0.76339817, -1.40200293, 0.968161583, -1.98322284,
         0.522130549, 2.61177397},
        {0.420152187, 0.0892365649, -0.36369288, -0.358497918,
         -0.73599714, -1.23487723, 0.968161583, -1.98322284,
         0.522130549, 2.61177397},
        {0.542810321, -0.0109267235, -0.339433432, -0.211015403,
         -0.812383771, -1.17769217, 0.923463762, -1.83185756,
         0.394589394, 2.60055065},
        {0.563250661, 0.103747956, -0.416956723, -0.161479175,
         -0.946308255, -1.22342312, 0.802973509, -1.85345447,
         0.489577889, 2.4943285},
    },
};

/* ---- helpers ------------------------------------------------------------ */

static double grad_value(int t, int i, int off)
{
    return (double)(((i * 7 + t * 3 + off) % 11) - 5) * 0.13 + 0.01 * t;
}

static double flat(const tg_tensor *t, int64_t i)
{
    double v = NAN;
    ASSERT_OK(tg_tensor_get_flat(t, i, &v));
    return v;
}

/* A caller-owned leaf that requires grad. */
static tg_tensor *param(tg_dtype dtype, int ndim, const int64_t *shape, const double *v)
{
    tg_tensor *t = tg_tensor_from_doubles(dtype, ndim, shape, v);
    ck_assert_ptr_nonnull(t);
    ASSERT_OK(tg_tensor_set_requires_grad(t, true));
    return t;
}

/* Gives p a .grad the public way (a backward pass), once. */
static void ensure_grad(tg_tensor *p)
{
    if (tg_tensor_grad(p))
        return;
    tg_tape *tape = tg_tape_new();
    ck_assert_ptr_nonnull(tape);
    ASSERT_OK(tg_backward(tg_sum(p, NULL, 0, false)));
    tg_tape_free(tape);
    ck_assert_ptr_nonnull(tg_tensor_grad(p));
}

/* Writes g (as doubles, rounded to p's dtype) into p's grad. */
static void set_grad(tg_tensor *p, const double *g)
{
    ensure_grad(p);
    for (int64_t i = 0; i < tg_tensor_numel(p); i++)
        ASSERT_OK(tg_tensor_set_flat(tg_tensor_grad(p), i, g[i]));
}

static void set_grad_all(tg_tensor *p, double v)
{
    ensure_grad(p);
    ASSERT_OK(tg_tensor_fill(tg_tensor_grad(p), v));
}

static double state_value(tg_optim *opt, int i, const char *name, int64_t k)
{
    tg_tensor *s = tg_optim_state(opt, i, name);
    ck_assert_msg(s != NULL, "state %s: %s", name, tg_last_error());
    return flat(s, k);
}

/* The configs of the torch tables, in the same order. */
static tg_optim *make_config(int cfg, tg_tensor *const *ps, int n)
{
    tg_sgd_opts s = tg_sgd_defaults();
    tg_adam_opts a = tg_adam_defaults();
    tg_rmsprop_opts r = tg_rmsprop_defaults();
    switch (cfg) {
    case 0:
        s.lr = 0.1;
        return tg_optim_sgd(ps, n, &s);
    case 1:
        s.lr = 0.05, s.momentum = 0.9, s.dampening = 0.1, s.weight_decay = 0.01;
        return tg_optim_sgd(ps, n, &s);
    case 2:
        s.lr = 0.05, s.momentum = 0.9, s.nesterov = true, s.weight_decay = 0.05;
        return tg_optim_sgd(ps, n, &s);
    case 3:
        a.lr = 0.1;
        return tg_optim_adam(ps, n, &a);
    case 4:
        a.lr = 0.05, a.beta1 = 0.8, a.beta2 = 0.99, a.eps = 1e-3, a.weight_decay = 0.1;
        return tg_optim_adam(ps, n, &a);
    case 5:
        a = tg_adamw_defaults();
        a.lr = 0.1, a.weight_decay = 0.1;
        return tg_optim_adamw(ps, n, &a);
    case 6:
        return tg_optim_rmsprop(ps, n, NULL);
    case 7:
        r.lr = 0.01, r.alpha = 0.9, r.eps = 1e-6, r.momentum = 0.5, r.centered = true;
        r.weight_decay = 0.1;
        return tg_optim_rmsprop(ps, n, &r);
    case 8:
        r.lr = 0.02, r.centered = true;
        return tg_optim_rmsprop(ps, n, &r);
    }
    return NULL;
}

/* Param 0's start, computed as the script does (0.5 - 0.3*i in double). */
static void p_values(double v[N_P])
{
    for (int i = 0; i < N_P; i++)
        v[i] = 0.5 - 0.3 * i;
}

static const double q_init[N_Q] = {1.0, -2.0, 0.25, 3.0};

/* Runs config cfg for N_STEPS steps in dtype and compares every value after
 * every step with the torch table. */
static void check_against_torch(int cfg, tg_dtype dtype)
{
    double pv[N_P];
    p_values(pv);
    tg_tensor *p = param(dtype, TG_SHAPE(2, 3), pv);
    tg_tensor *q = param(dtype, TG_SHAPE(4), q_init);
    tg_tensor *ps[2] = {p, q};
    tg_optim *opt = make_config(cfg, ps, 2);
    ck_assert_msg(opt != NULL, "config %d: %s", cfg, tg_last_error());
    const double(*want)[N_VALUES] = dtype == TG_F64 ? torch_f64[cfg] : torch_f32[cfg];
    // float32: torch and we round intermediate results in different orders.
    const double atol = dtype == TG_F64 ? 1e-14 : 2e-6, rtol = dtype == TG_F64 ? 1e-12 : 2e-6;
    for (int t = 1; t <= N_STEPS; t++) {
        double g[N_VALUES];
        for (int i = 0; i < N_P; i++)
            g[i] = grad_value(t, i, 0);
        for (int i = 0; i < N_Q; i++)
            g[N_P + i] = grad_value(t, i, 5);
        set_grad(p, g);
        set_grad(q, g + N_P);
        tg_tensor *saved = NULL;
        if (t == 3) { // torch's q.grad = None
            saved = q->grad;
            q->grad = NULL;
        }
        ASSERT_OK(tg_optim_step(opt));
        if (saved)
            q->grad = saved;
        for (int i = 0; i < N_VALUES; i++) {
            double got = i < N_P ? flat(p, i) : flat(q, i - N_P);
            ck_assert_msg(fabs(got - want[t - 1][i]) <= atol + rtol * fabs(want[t - 1][i]),
                          "config %d %s step %d value %d: %.17g, torch %.17g", cfg,
                          tg_dtype_name(dtype), t, i, got, want[t - 1][i]);
        }
    }
    ck_assert_int_eq(tg_optim_step_count(opt), N_STEPS);
    ck_assert(state_value(opt, 0, "step", 0) == N_STEPS);
    ck_assert(state_value(opt, 1, "step", 0) == N_STEPS - 1);
    tg_optim_free(opt);
    tg_tensor_free(p);
    tg_tensor_free(q);
}

/* ---- SGD ---------------------------------------------------------------- */

START_TEST(test_torch_f64) { check_against_torch(_i, TG_F64); }
END_TEST

START_TEST(test_torch_f32) { check_against_torch(_i, TG_F32); }
END_TEST

START_TEST(test_sgd_defaults)
{
    tg_sgd_opts o = tg_sgd_defaults();
    ck_assert(o.lr == 0.01 && o.momentum == 0 && o.dampening == 0 && o.weight_decay == 0);
    ck_assert(!o.nesterov);
    tg_tensor *p = param(TG_F64, TG_SHAPE(2), (double[]){1, 2});
    tg_optim *opt = tg_optim_sgd(&p, 1, NULL);
    ck_assert_ptr_nonnull(opt);
    ck_assert_str_eq(tg_optim_name(opt), "sgd");
    ck_assert(tg_optim_get_lr(opt) == 0.01);
    // Without momentum there is no buffer, only the step count.
    ck_assert_str_eq(tg_optim_state_name(opt, 0), "step");
    ck_assert_ptr_null(tg_optim_state_name(opt, 1));
    set_grad(p, (double[]){1, -2});
    ASSERT_OK(tg_optim_step(opt));
    ck_assert(flat(p, 0) == 1 - 0.01 * 1.0 && flat(p, 1) == 2 - 0.01 * -2.0);
    tg_optim_free(opt);
    tg_tensor_free(p);
}
END_TEST

/* The momentum buffer is seeded with the first gradient (not (1 - dampening)
 * times it), then decays: torch's rule, checked by hand. */
START_TEST(test_sgd_momentum_buffer)
{
    tg_tensor *p = param(TG_F64, TG_SHAPE(1), (double[]){1});
    tg_sgd_opts o = tg_sgd_defaults();
    o.lr = 0.1, o.momentum = 0.5, o.dampening = 0.25;
    tg_optim *opt = tg_optim_sgd(&p, 1, &o);
    ck_assert_ptr_nonnull(opt);
    ck_assert_str_eq(tg_optim_state_name(opt, 1), "momentum_buffer");
    ck_assert(state_value(opt, 0, "momentum_buffer", 0) == 0);
    set_grad(p, (double[]){2});
    ASSERT_OK(tg_optim_step(opt));
    ck_assert(state_value(opt, 0, "momentum_buffer", 0) == 2);
    ASSERT_CLOSE(flat(p, 0), 1 - 0.1 * 2, 0, 1e-15);
    set_grad(p, (double[]){4});
    ASSERT_OK(tg_optim_step(opt));
    ASSERT_CLOSE(state_value(opt, 0, "momentum_buffer", 0), 0.5 * 2 + 0.75 * 4, 0, 1e-15);
    ASSERT_CLOSE(flat(p, 0), 0.8 - 0.1 * 4, 0, 1e-15);
    tg_optim_free(opt);
    tg_tensor_free(p);
}
END_TEST

/* ---- Adam / AdamW ------------------------------------------------------- */

START_TEST(test_adam_defaults)
{
    tg_adam_opts a = tg_adam_defaults(), w = tg_adamw_defaults(), k = tg_adam_keras_defaults();
    ck_assert(a.lr == 1e-3 && a.beta1 == 0.9 && a.beta2 == 0.999 && a.eps == 1e-8);
    ck_assert(a.weight_decay == 0 && a.form == TG_ADAM_PYTORCH);
    ck_assert(w.lr == 1e-3 && w.beta1 == 0.9 && w.beta2 == 0.999 && w.eps == 1e-8);
    ck_assert(w.weight_decay == 1e-2 && w.form == TG_ADAM_PYTORCH);
    ck_assert(k.lr == 1e-3 && k.beta1 == 0.9 && k.beta2 == 0.999 && k.eps == 1e-7);
    ck_assert(k.weight_decay == 0 && k.form == TG_ADAM_KERAS);
    tg_tensor *p = param(TG_F32, TG_SHAPE(3), (double[]){1, 2, 3});
    tg_optim *adam = tg_optim_adam(&p, 1, NULL), *adamw = tg_optim_adamw(&p, 1, NULL);
    ck_assert_ptr_nonnull(adam);
    ck_assert_ptr_nonnull(adamw);
    ck_assert_str_eq(tg_optim_name(adam), "adam");
    ck_assert_str_eq(tg_optim_name(adamw), "adamw");
    ck_assert_str_eq(tg_optim_state_name(adam, 1), "exp_avg");
    ck_assert_str_eq(tg_optim_state_name(adam, 2), "exp_avg_sq");
    ck_assert_ptr_null(tg_optim_state_name(adam, 3));
    tg_tensor *m = tg_optim_state(adam, 0, "exp_avg");
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(tg_tensor_dtype(m), TG_F32);
    ck_assert_int_eq(tg_tensor_numel(m), 3);
    ck_assert_int_eq(tg_tensor_dtype(tg_optim_state(adam, 0, "step")), TG_F64);
    ck_assert_int_eq(tg_tensor_ndim(tg_optim_state(adam, 0, "step")), 0);
    // AdamW's NULL opts mean its own defaults: wd 1e-2 shows in the first step.
    set_grad(p, (double[]){0.5, -0.5, 1});
    ASSERT_OK(tg_optim_step(adamw));
    // Step 1: m_hat = g, v_hat = g^2, so the update is lr * g / (|g| + eps).
    for (int i = 0; i < 3; i++) {
        double pi = i + 1.0, gi = i == 1 ? -0.5 : i == 0 ? 0.5 : 1;
        ASSERT_CLOSE(flat(p, i), pi * (1 - 1e-3 * 1e-2) - 1e-3 * gi / (fabs(gi) + 1e-8), 0,
                     1e-6);
    }
    tg_optim_free(adam);
    tg_optim_free(adamw);
    tg_tensor_free(p);
}
END_TEST

/* The Keras/TF form from its published rule, in long double:
 *   [AdamW: p -= p * wd * lr]
 *   m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2)
 *   lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); p -= lr_t m / (sqrt(v) + eps) */
static void check_keras(tg_dtype dtype, bool adamw)
{
    const int n = 5, steps = 6;
    const long double lr = 0.02L, b1 = 0.85L, b2 = 0.995L, eps = 1e-7L, wd = 0.1L;
    double init[5] = {0.3, -1.2, 2.0, 0.0, 1e-3};
    tg_tensor *p = param(dtype, TG_SHAPE(5), init);
    tg_adam_opts o = tg_adam_keras_defaults();
    o.lr = (double)lr, o.beta1 = (double)b1, o.beta2 = (double)b2, o.eps = (double)eps;
    if (adamw)
        o.weight_decay = (double)wd;
    tg_optim *opt = adamw ? tg_optim_adamw(&p, 1, &o) : tg_optim_adam(&p, 1, &o);
    ck_assert_ptr_nonnull(opt);
    long double rp[5], rm[5] = {0}, rv[5] = {0};
    for (int i = 0; i < n; i++)
        rp[i] = dtype == TG_F32 ? (long double)(float)init[i] : (long double)init[i];
    for (int t = 1; t <= steps; t++) {
        double g[5];
        for (int i = 0; i < n; i++) {
            g[i] = grad_value(t, i, 2) * (i == 4 ? 1e-6 : 1); // one tiny gradient: eps matters
            if (dtype == TG_F32)
                g[i] = (float)g[i];
        }
        set_grad(p, g);
        ASSERT_OK(tg_optim_step(opt));
        long double lr_t = lr * sqrtl(1 - powl(b2, t)) / (1 - powl(b1, t));
        for (int i = 0; i < n; i++) {
            if (adamw)
                rp[i] -= rp[i] * wd * lr;
            rm[i] += (g[i] - rm[i]) * (1 - b1);
            rv[i] += ((long double)g[i] * g[i] - rv[i]) * (1 - b2);
            rp[i] -= lr_t * rm[i] / (sqrtl(rv[i]) + eps);
            double tol = dtype == TG_F64 ? 1e-14 : 2e-6;
            ck_assert_msg(fabs(flat(p, i) - (double)rp[i]) <= tol * (1 + fabsl(rp[i])),
                          "%s step %d [%d]: %.17g vs reference %.17Lg", tg_dtype_name(dtype),
                          t, i, flat(p, i), rp[i]);
            ASSERT_CLOSE(state_value(opt, 0, "exp_avg", i), (double)rm[i], 1e-20,
                         dtype == TG_F64 ? 1e-13 : 1e-5);
        }
    }
    tg_optim_free(opt);
    tg_tensor_free(p);
}

START_TEST(test_adam_keras_f64) { check_keras(TG_F64, false); }
END_TEST
START_TEST(test_adam_keras_f32) { check_keras(TG_F32, false); }
END_TEST
START_TEST(test_adamw_keras_f64) { check_keras(TG_F64, true); }
END_TEST
START_TEST(test_adamw_keras_f32) { check_keras(TG_F32, true); }
END_TEST

/* The two forms give different numbers when eps is not negligible next to
 * sqrt(v): step 1 with g = 1e-7 and eps = 1e-7, by hand:
 *   PyTorch: lr * g / (|g| + eps) = lr / 2
 *   Keras:   lr * sqrt(1 - b2) / (1 - b1) * (1 - b1) g / (sqrt(1 - b2) |g| + eps)
 *          = lr * sqrt(0.001) / (sqrt(0.001) + 1) = lr * 0.0306...
 * and nearly the same ones when it is (g = 1). */
/* Every variant of the float32 Adam kernel the CPU runs (adam.c) gives the
 * portable loop's bytes: both forms, with and without each weight decay,
 * lengths around the 16-lane vector, gradients and moments across many
 * magnitudes (and zeros, whose square roots the step divides by). */
START_TEST(test_adam_f32_variants_same_bytes)
{
    static const int64_t lens[] = {1, 15, 16, 17, 1000};
    enum { N = 1000 };
    float p0[N], g[N], m0[N], v0[N];
    uint64_t seed = 7;
    for (int i = 0; i < N; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        double u = (double)(seed >> 11) / 9007199254740992.0;
        p0[i] = (float)((u - 0.5) * 2);
        g[i] = i % 13 == 0 ? 0.0f : (float)((u - 0.3) * pow(10, i % 7 - 4));
        m0[i] = (float)(0.1 * (u - 0.5));
        v0[i] = i % 11 == 0 ? 0.0f : (float)(u * 1e-3);
    }
    for (int form = 0; form < 8; form++) {
        tg__adam_coef c = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-7,
                           .l2 = form & 2 ? 1e-2 : 0, .shrink = form & 4 ? 1 - 1e-3 * 0.01 : 1,
                           .step_size = 1e-3 / (1 - 0.9 * 0.9), .bc2_sqrt = sqrt(1 - 0.999 * 0.999),
                           .alpha = 1e-3 * sqrt(1 - 0.999 * 0.999) / (1 - 0.9 * 0.9),
                           .keras = form & 1};
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            float pr[N], mr[N], vr[N];
            memcpy(pr, p0, sizeof pr);
            memcpy(mr, m0, sizeof mr);
            memcpy(vr, v0, sizeof vr);
            tg__adam_f32_variant(0, pr, g, mr, vr, lens[l], &c);
            for (int var = 1; var < tg__adam_f32_variants(); var++) {
                float pv[N], mv[N], vv[N];
                memcpy(pv, p0, sizeof pv);
                memcpy(mv, m0, sizeof mv);
                memcpy(vv, v0, sizeof vv);
                tg__adam_f32_variant(var, pv, g, mv, vv, lens[l], &c);
                ck_assert_msg(memcmp(pv, pr, sizeof pv) == 0 && memcmp(mv, mr, sizeof mv) == 0 &&
                                  memcmp(vv, vr, sizeof vv) == 0,
                              "variant %d, form %d, n %lld: not the portable loop's bytes", var,
                              form, (long long)lens[l]);
            }
        }
    }
}
END_TEST

START_TEST(test_adam_forms_differ)
{
    const double lr = 0.1, s = sqrt(1 - 0.999);
    double want_torch[2] = {lr * 1e-7 / (1e-7 + 1e-7), lr * 1 / (1 + 1e-7)};
    double want_keras[2] = {lr * s * 1e-7 / (s * 1e-7 + 1e-7), lr * s / (s + 1e-7)};
    for (int form = 0; form < 2; form++) {
        tg_tensor *p = param(TG_F64, TG_SHAPE(2), (double[]){0, 0});
        tg_adam_opts o = tg_adam_defaults();
        o.lr = lr, o.eps = 1e-7, o.form = form ? TG_ADAM_KERAS : TG_ADAM_PYTORCH;
        tg_optim *opt = tg_optim_adam(&p, 1, &o);
        ck_assert_ptr_nonnull(opt);
        set_grad(p, (double[]){1e-7, 1});
        ASSERT_OK(tg_optim_step(opt));
        const double *want = form ? want_keras : want_torch;
        ASSERT_CLOSE(-flat(p, 0), want[0], 0, 1e-12);
        ASSERT_CLOSE(-flat(p, 1), want[1], 0, 1e-12);
        tg_optim_free(opt);
        tg_tensor_free(p);
    }
    ck_assert(fabs(want_torch[0] - want_keras[0]) > 0.01);
    ck_assert(fabs(want_torch[1] - want_keras[1]) < 1e-5);
}
END_TEST

/* ---- RMSprop ------------------------------------------------------------ */

START_TEST(test_rmsprop_defaults)
{
    tg_rmsprop_opts o = tg_rmsprop_defaults();
    ck_assert(o.lr == 1e-2 && o.alpha == 0.99 && o.eps == 1e-8 && o.weight_decay == 0);
    ck_assert(o.momentum == 0 && !o.centered);
    tg_tensor *p = param(TG_F64, TG_SHAPE(1), (double[]){1});
    tg_optim *opt = tg_optim_rmsprop(&p, 1, NULL);
    ck_assert_str_eq(tg_optim_name(opt), "rmsprop");
    ck_assert_str_eq(tg_optim_state_name(opt, 1), "square_avg");
    ck_assert_ptr_null(tg_optim_state_name(opt, 2));
    tg_optim_free(opt);
    o.momentum = 0.9, o.centered = true;
    opt = tg_optim_rmsprop(&p, 1, &o);
    ck_assert_str_eq(tg_optim_state_name(opt, 2), "momentum_buffer");
    ck_assert_str_eq(tg_optim_state_name(opt, 3), "grad_avg");
    // By hand, step 1 with g = 2: sq = 0.01*4, ga = 0.01*2, d = sqrt(0.04 - 0.0004) + eps,
    // buf = g / d, p -= lr * buf.
    set_grad(p, (double[]){2});
    ASSERT_OK(tg_optim_step(opt));
    double d = sqrt(0.04 - 0.0004) + 1e-8;
    ASSERT_CLOSE(state_value(opt, 0, "square_avg", 0), 0.04, 0, 1e-14);
    ASSERT_CLOSE(state_value(opt, 0, "grad_avg", 0), 0.02, 0, 1e-14);
    ASSERT_CLOSE(state_value(opt, 0, "momentum_buffer", 0), 2 / d, 0, 1e-14);
    ASSERT_CLOSE(flat(p, 0), 1 - 0.01 * 2 / d, 0, 1e-14);
    tg_optim_free(opt);
    tg_tensor_free(p);
}
END_TEST

/* ---- schedules ---------------------------------------------------------- */

START_TEST(test_schedule_values)
{
    tg_schedule c = tg_schedule_constant(0.3);
    ck_assert(tg_schedule_lr(&c, 0) == 0.3 && tg_schedule_lr(&c, 1000000) == 0.3);

    tg_schedule s = tg_schedule_step(0.1, 3, 0.5);
    const double step_want[] = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025};
    for (int i = 0; i < 8; i++)
        ASSERT_CLOSE(tg_schedule_lr(&s, i), step_want[i], 0, 1e-15);

    tg_schedule e = tg_schedule_exponential(0.1, 0.9);
    ASSERT_CLOSE(tg_schedule_lr(&e, 0), 0.1, 0, 1e-15);
    ASSERT_CLOSE(tg_schedule_lr(&e, 1), 0.09, 0, 1e-15);
    ASSERT_CLOSE(tg_schedule_lr(&e, 2), 0.081, 0, 1e-15);
    ASSERT_CLOSE(tg_schedule_lr(&e, 10), 0.1 * pow(0.9, 10), 0, 1e-15);

    tg_schedule k = tg_schedule_cosine(0.1, 10, 0.01);
    ASSERT_CLOSE(tg_schedule_lr(&k, 0), 0.1, 0, 1e-15);
    ASSERT_CLOSE(tg_schedule_lr(&k, 5), 0.055, 0, 1e-15);
    // cos(pi/5) = (1 + sqrt 5)/4: lr(2) = 0.01 + 0.09 * (1 + cos(pi/5)) / 2
    ASSERT_CLOSE(tg_schedule_lr(&k, 2), 0.01 + 0.045 * (1 + (1 + sqrt(5.0)) / 4), 0, 1e-14);
    ASSERT_CLOSE(tg_schedule_lr(&k, 10), 0.01, 0, 1e-15);
    // Held at eta_min after t_max instead of rising again.
    ck_assert(tg_schedule_lr(&k, 15) == 0.01 && tg_schedule_lr(&k, 25) == 0.01);
}
END_TEST

START_TEST(test_schedule_warmup)
{
    tg_schedule k = tg_schedule_cosine(0.1, 10, 0.01);
    k.warmup_steps = 4;
    // (s + 1) / W ramp, then the cosine starts at s' = s - W = 0.
    const double want[] = {0.025, 0.05, 0.075, 0.1, 0.1};
    for (int i = 0; i < 5; i++)
        ASSERT_CLOSE(tg_schedule_lr(&k, i), want[i], 0, 1e-15);
    ASSERT_CLOSE(tg_schedule_lr(&k, 9), 0.055, 0, 1e-15);
    ASSERT_CLOSE(tg_schedule_lr(&k, 14), 0.01, 0, 1e-15);

    tg_schedule s = tg_schedule_step(1.0, 2, 0.1);
    s.warmup_steps = 2;
    const double step_want[] = {0.5, 1.0, 1.0, 1.0, 0.1, 0.1, 0.01};
    for (int i = 0; i < 7; i++)
        ASSERT_CLOSE(tg_schedule_lr(&s, i), step_want[i], 0, 1e-15);

    tg_schedule e = tg_schedule_exponential(0.2, 0.5);
    e.warmup_steps = 1; // W = 1: the ramp is just base_lr at step 0
    ASSERT_CLOSE(tg_schedule_lr(&e, 0), 0.2, 0, 1e-15);
    ASSERT_CLOSE(tg_schedule_lr(&e, 1), 0.2, 0, 1e-15);
    ASSERT_CLOSE(tg_schedule_lr(&e, 3), 0.05, 0, 1e-15);
}
END_TEST

/* Attached to SGD with g = 1, each step moves p by exactly the lr it used. */
/* A schedule that drives the rate to infinity used to write -inf into every
 * parameter and return TG_OK (issue 11 item 12). */
START_TEST(test_schedule_to_infinity_refused)
{
    tg_tensor *p = param(TG_F64, TG_SHAPE(2), (double[]){1, 2});
    tg_optim *opt = tg_optim_sgd(&p, 1, NULL);
    tg_schedule s = tg_schedule_exponential(1.0, 1e300);
    ASSERT_OK(tg_optim_set_schedule(opt, &s));
    set_grad_all(p, 1);
    ASSERT_OK(tg_optim_step(opt));  // lr 1
    ASSERT_OK(tg_optim_step(opt));  // lr 1e300
    double before[2] = {flat(p, 0), flat(p, 1)};
    ASSERT_FAIL(tg_optim_step(opt), TG_ERANGE, "tg_optim_step: the schedule gives lr inf at step 2");
    ck_assert(flat(p, 0) == before[0] && flat(p, 1) == before[1]);
    ck_assert_int_eq(tg_optim_step_count(opt), 2);
    tg_optim_free(opt);
    tg_tensor_free(p);
}
END_TEST

START_TEST(test_getters_record_null)
{
    tg_clear_error();
    ck_assert_str_eq(tg_optim_name(NULL), "?");
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_optim_name");
    tg_clear_error();
    ck_assert_int_eq(tg_optim_num_params(NULL), 0);
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_optim_num_params");
    tg_clear_error();
    ck_assert_int_eq(tg_optim_step_count(NULL), 0);
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_optim_step_count");
    tg_clear_error();
    ck_assert_ptr_null(tg_optim_state_name(NULL, 0));
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_optim_state_name");
    tg_clear_error();
    tg_optim_zero_grad(NULL);
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_optim_zero_grad");
}
END_TEST

START_TEST(test_schedule_attached)
{
    tg_tensor *p = param(TG_F64, TG_SHAPE(1), (double[]){0});
    tg_optim *opt = tg_optim_sgd(&p, 1, NULL);
    ck_assert_ptr_nonnull(opt);
    tg_schedule s = tg_schedule_step(0.1, 2, 0.5);
    s.warmup_steps = 1;
    ASSERT_OK(tg_optim_set_schedule(opt, &s));
    s.base_lr = 99; // the optimizer keeps its own copy
    const double want[] = {0.1, 0.1, 0.1, 0.05, 0.05, 0.025};
    set_grad_all(p, 1);
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(tg_optim_step_count(opt), i);
        ASSERT_CLOSE(tg_optim_get_lr(opt), want[i], 0, 1e-15);
        double before = flat(p, 0);
        ASSERT_OK(tg_optim_step(opt));
        ASSERT_CLOSE(before - flat(p, 0), want[i], 1e-16, 1e-12);
    }
    ASSERT_FAIL(tg_optim_set_lr(opt, 0.5), TG_ESTATE, "schedule is attached");
    // Detaching keeps the lr the next step would have used.
    ASSERT_OK(tg_optim_set_schedule(opt, NULL));
    ASSERT_CLOSE(tg_optim_get_lr(opt), 0.025, 0, 1e-15);
    ASSERT_OK(tg_optim_set_lr(opt, 0.5));
    ck_assert(tg_optim_get_lr(opt) == 0.5);
    // Moving the count moves the schedule (restoring from a checkpoint).
    ASSERT_OK(tg_optim_set_schedule(opt, &(tg_schedule){.kind = TG_SCHED_EXPONENTIAL,
                                                         .base_lr = 1, .gamma = 0.5}));
    ASSERT_OK(tg_optim_set_step_count(opt, 3));
    ASSERT_CLOSE(tg_optim_get_lr(opt), 0.125, 0, 1e-15);
    tg_optim_free(opt);
    tg_tensor_free(p);
}
END_TEST

/* ---- clipping ----------------------------------------------------------- */

START_TEST(test_clip_norm)
{
    // Mixed dtypes and a param without grad: |(3, 4, 12)| = 13.
    tg_tensor *a = param(TG_F64, TG_SHAPE(2), (double[]){0, 0});
    tg_tensor *b = param(TG_F32, TG_SHAPE(1, 1), (double[]){0});
    tg_tensor *none = param(TG_F64, TG_SHAPE(3), (double[]){0, 0, 0});
    tg_tensor *ps[3] = {a, none, b};
    set_grad(a, (double[]){3, 4});
    set_grad(b, (double[]){12});
    double total = -1;
    ASSERT_OK(tg_clip_grad_norm(ps, 3, 20, &total));
    ck_assert(total == 13);
    ck_assert(flat(tg_tensor_grad(a), 0) == 3 && flat(tg_tensor_grad(b), 0) == 12);
    ASSERT_OK(tg_clip_grad_norm(ps, 3, 6.5, &total));
    ck_assert(total == 13);
    const double c = 6.5 / (13 + 1e-6); // torch's factor
    ASSERT_CLOSE(flat(tg_tensor_grad(a), 0), 3 * c, 0, 1e-15);
    ASSERT_CLOSE(flat(tg_tensor_grad(a), 1), 4 * c, 0, 1e-15);
    ASSERT_CLOSE(flat(tg_tensor_grad(b), 0), 12 * c, 0, 1e-7);
    ck_assert_ptr_null(tg_tensor_grad(none));
    ASSERT_OK(tg_clip_grad_norm(ps, 3, 6.5, NULL)); // out may be NULL
    // max_norm 0 zeroes the grads.
    ASSERT_OK(tg_clip_grad_norm(ps, 3, 0, &total));
    ck_assert(flat(tg_tensor_grad(a), 0) == 0 && flat(tg_tensor_grad(b), 0) == 0);
    ck_assert(total > 6.49 && total < 6.51);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tensor_free(none);
}
END_TEST

START_TEST(test_clip_norm_extremes)
{
    tg_tensor *a = param(TG_F64, TG_SHAPE(2), (double[]){0, 0});
    // Squares overflow, the norm does not: 1e200 * sqrt(2).
    set_grad(a, (double[]){1e200, -1e200});
    double total = -1;
    ASSERT_OK(tg_clip_grad_norm(&a, 1, 1, &total));
    ASSERT_CLOSE(total, 1e200 * sqrt(2.0), 0, 1e-14);
    ASSERT_CLOSE(flat(tg_tensor_grad(a), 0), 1 / sqrt(2.0), 0, 1e-14);
    ASSERT_CLOSE(flat(tg_tensor_grad(a), 1), -1 / sqrt(2.0), 0, 1e-14);
    // Non-finite totals fail and leave everything alone.
    set_grad(a, (double[]){INFINITY, 1});
    total = -1;
    ASSERT_FAIL(tg_clip_grad_norm(&a, 1, 1, &total), TG_ERANGE, "total gradient norm is inf");
    ck_assert(total == -1 && flat(tg_tensor_grad(a), 1) == 1);
    set_grad(a, (double[]){NAN, 1});
    ASSERT_FAIL(tg_clip_grad_norm(&a, 1, 1, &total), TG_ERANGE, "total gradient norm is nan");
    ck_assert(total == -1 && flat(tg_tensor_grad(a), 1) == 1);
    tg_tensor_free(a);
}
END_TEST

START_TEST(test_clip_value)
{
    tg_tensor *a = param(TG_F64, TG_SHAPE(5), (double[]){0, 0, 0, 0, 0});
    tg_tensor *b = param(TG_F32, TG_SHAPE(2), (double[]){0, 0});
    tg_tensor *ps[2] = {a, b};
    set_grad(a, (double[]){-3, 0.5, 2, NAN, -0.25});
    set_grad(b, (double[]){7, -1});
    ASSERT_OK(tg_clip_grad_value(ps, 2, 1));
    const double want[5] = {-1, 0.5, 1, NAN, -0.25};
    for (int i = 0; i < 5; i++)
        if (i != 3)
            ck_assert(flat(tg_tensor_grad(a), i) == want[i]);
    ck_assert(isnan(flat(tg_tensor_grad(a), 3)));
    ck_assert(flat(tg_tensor_grad(b), 0) == 1 && flat(tg_tensor_grad(b), 1) == -1);
    ASSERT_OK(tg_clip_grad_value(ps, 2, 0));
    ck_assert(flat(tg_tensor_grad(a), 1) == 0 && flat(tg_tensor_grad(b), 0) == 0);
    tg_tensor_free(a);
    tg_tensor_free(b);
}
END_TEST

/* ---- state: inspection, restore, zero_grad ------------------------------ */

/* A and B take the same `steps` steps, but before B's step `at` its state is
 * copied into a fresh optimizer that takes over: B must end exactly (bit for
 * bit) where A does. */
static void check_restore(int cfg, int steps, int at)
{
    double pv[N_P];
    p_values(pv);
    tg_tensor *pa = param(TG_F64, TG_SHAPE(6), pv), *pb = param(TG_F64, TG_SHAPE(6), pv);
    tg_optim *a = make_config(cfg, &pa, 1), *b = make_config(cfg, &pb, 1);
    ck_assert(a && b);
    for (int t = 1; t <= steps; t++) {
        double g[N_P];
        for (int i = 0; i < N_P; i++)
            g[i] = grad_value(t, i, 0);
        set_grad(pa, g);
        ASSERT_OK(tg_optim_step(a));
        if (t == at) {
            tg_optim *fresh = make_config(cfg, &pb, 1);
            for (int k = 0; tg_optim_state_name(b, k); k++) {
                const char *name = tg_optim_state_name(b, k);
                ASSERT_OK(tg_tensor_copy_values(tg_optim_state(fresh, 0, name),
                                                tg_optim_state(b, 0, name)));
            }
            ASSERT_OK(tg_optim_set_step_count(fresh, tg_optim_step_count(b)));
            tg_optim_free(b);
            b = fresh;
        }
        set_grad(pb, g);
        ASSERT_OK(tg_optim_step(b));
    }
    ck_assert_int_eq(tg_optim_step_count(b), steps);
    for (int i = 0; i < N_P; i++)
        ck_assert_msg(flat(pa, i) == flat(pb, i), "config %d [%d]: %.17g vs %.17g", cfg, i,
                      flat(pa, i), flat(pb, i));
    tg_optim_free(a);
    tg_optim_free(b);
    tg_tensor_free(pa);
    tg_tensor_free(pb);
}

START_TEST(test_state_restore)
{
    for (int cfg = 0; cfg < N_CONFIGS; cfg++)
        check_restore(cfg, 5, 3);
    // Adam carries beta^t forward by products between pow() re-syncs; a
    // resumed run must still match, wherever it was saved.
    for (int at = 60; at < 140; at += 7) {
        check_restore(3, 150, at);
        check_restore(5, 150, at);
    }
}
END_TEST

START_TEST(test_state_access)
{
    tg_tensor *p = param(TG_F32, TG_SHAPE(2, 2), (double[]){1, 2, 3, 4});
    tg_tensor *q = param(TG_F64, TG_SHAPE(3), (double[]){1, 2, 3});
    tg_tensor *ps[2] = {p, q};
    tg_optim *opt = tg_optim_adam(ps, 2, NULL);
    ck_assert_int_eq(tg_optim_num_params(opt), 2);
    ck_assert_ptr_eq(tg_optim_param(opt, 1), q);
    tg_tensor *v = tg_optim_state(opt, 1, "exp_avg_sq");
    ck_assert_int_eq(tg_tensor_dtype(v), TG_F64);
    ck_assert_int_eq(tg_tensor_ndim(v), 1);
    ck_assert_int_eq(tg_tensor_dim(v, 0), 3);
    ck_assert(!tg_tensor_on_tape(v) && !tg_tensor_requires_grad(v));
    ck_assert_int_eq(tg_tensor_dim(tg_optim_state(opt, 0, "exp_avg"), 1), 2);
    // Params without a grad are skipped; zero_grad keeps the buffers.
    set_grad(p, (double[]){1, 1, 1, 1});
    ASSERT_OK(tg_optim_step(opt));
    ck_assert(state_value(opt, 0, "step", 0) == 1 && state_value(opt, 1, "step", 0) == 0);
    ck_assert(flat(q, 0) == 1 && state_value(opt, 1, "exp_avg", 0) == 0);
    ASSERT_CLOSE(state_value(opt, 0, "exp_avg", 3), 0.1, 0, 1e-7);
    tg_tensor *g = tg_tensor_grad(p);
    tg_optim_zero_grad(opt);
    ck_assert_ptr_eq(tg_tensor_grad(p), g);
    ck_assert(flat(g, 0) == 0 && flat(g, 3) == 0);
    ck_assert_ptr_null(tg_tensor_grad(q));
    tg_optim_zero_grad(NULL);
    tg_optim_free(NULL);
    tg_optim_free(opt);
    tg_tensor_free(p);
    tg_tensor_free(q);
}
END_TEST

/* ---- errors ------------------------------------------------------------- */

START_TEST(test_errors_params)
{
    tg_tensor *p = param(TG_F64, TG_SHAPE(2), (double[]){1, 2});
    tg_tensor *plain = tg_tensor_zeros(TG_F64, TG_SHAPE(2));
    ASSERT_NULL_FAIL(tg_optim_sgd(NULL, 1, NULL), TG_EINVAL, "tg_optim_sgd: params is NULL");
    ASSERT_NULL_FAIL(tg_optim_adam(&p, 0, NULL), TG_EINVAL, "tg_optim_adam: n is 0");
    ASSERT_NULL_FAIL(tg_optim_adamw(&p, -3, NULL), TG_EINVAL, "tg_optim_adamw: n is -3");
    tg_tensor *with_null[2] = {p, NULL};
    ASSERT_NULL_FAIL(tg_optim_rmsprop(with_null, 2, NULL), TG_EINVAL,
                     "tg_optim_rmsprop: params[1] is NULL");
    tg_tensor *no_grad[2] = {p, plain};
    ASSERT_NULL_FAIL(tg_optim_sgd(no_grad, 2, NULL), TG_EINVAL,
                     "params[1] does not require grad");
    tg_tensor *twice[2] = {p, p};
    ASSERT_NULL_FAIL(tg_optim_adam(twice, 2, NULL), TG_EINVAL,
                     "params[1] is the same tensor as params[0]");
    // An op result dies with the tape: refused.
    tg_tape *tape = tg_tape_new();
    tg_tensor *op = tg_mul_scalar(p, 2);
    ck_assert_ptr_nonnull(op);
    ASSERT_NULL_FAIL(tg_optim_sgd(&op, 1, NULL), TG_EINVAL, "params[0] belongs to a tape");
    tg_tape_free(tape);
    tg_tensor_free(p);
    tg_tensor_free(plain);
}
END_TEST

START_TEST(test_errors_opts)
{
    tg_tensor *p = param(TG_F32, TG_SHAPE(2), (double[]){1, 2});
    tg_sgd_opts s = tg_sgd_defaults();
    s.lr = -0.1;
    ASSERT_NULL_FAIL(tg_optim_sgd(&p, 1, &s), TG_EINVAL, "tg_optim_sgd: lr -0.1 must be >= 0");
    s = tg_sgd_defaults(), s.lr = NAN;
    ASSERT_NULL_FAIL(tg_optim_sgd(&p, 1, &s), TG_EINVAL, "lr nan");
    s = tg_sgd_defaults(), s.momentum = -1;
    ASSERT_NULL_FAIL(tg_optim_sgd(&p, 1, &s), TG_EINVAL, "momentum -1");
    s = tg_sgd_defaults(), s.weight_decay = -0.5;
    ASSERT_NULL_FAIL(tg_optim_sgd(&p, 1, &s), TG_EINVAL, "weight_decay -0.5");
    s = tg_sgd_defaults(), s.dampening = INFINITY;
    ASSERT_NULL_FAIL(tg_optim_sgd(&p, 1, &s), TG_EINVAL, "dampening inf");
    s = tg_sgd_defaults(), s.nesterov = true;
    ASSERT_NULL_FAIL(tg_optim_sgd(&p, 1, &s), TG_EINVAL,
                     "nesterov needs momentum > 0 and dampening 0 (momentum 0, dampening 0)");
    s.momentum = 0.9, s.dampening = 0.1;
    ASSERT_NULL_FAIL(tg_optim_sgd(&p, 1, &s), TG_EINVAL, "(momentum 0.9, dampening 0.1)");

    tg_adam_opts a = tg_adam_defaults();
    a.beta1 = 1;
    ASSERT_NULL_FAIL(tg_optim_adam(&p, 1, &a), TG_EINVAL, "tg_optim_adam: beta1 1 outside [0, 1)");
    a = tg_adam_defaults(), a.beta2 = -0.1;
    ASSERT_NULL_FAIL(tg_optim_adamw(&p, 1, &a), TG_EINVAL,
                     "tg_optim_adamw: beta2 -0.1 outside [0, 1)");
    a = tg_adam_defaults(), a.beta2 = NAN;
    ASSERT_NULL_FAIL(tg_optim_adam(&p, 1, &a), TG_EINVAL, "beta2 nan");
    a = tg_adam_defaults(), a.eps = 0;
    ASSERT_NULL_FAIL(tg_optim_adam(&p, 1, &a), TG_EINVAL, "eps 0 must be > 0");
    a = tg_adam_defaults(), a.lr = INFINITY;
    ASSERT_NULL_FAIL(tg_optim_adam(&p, 1, &a), TG_EINVAL, "lr inf must be >= 0 and finite");
    a = tg_adamw_defaults(), a.weight_decay = -1e-2;
    ASSERT_NULL_FAIL(tg_optim_adamw(&p, 1, &a), TG_EINVAL, "weight_decay -0.01");
    a = tg_adam_defaults(), a.form = (tg_adam_form)7;
    ASSERT_NULL_FAIL(tg_optim_adam(&p, 1, &a), TG_EINVAL, "unknown form 7");

    tg_rmsprop_opts r = tg_rmsprop_defaults();
    r.alpha = 1.5;
    ASSERT_NULL_FAIL(tg_optim_rmsprop(&p, 1, &r), TG_EINVAL,
                     "tg_optim_rmsprop: alpha 1.5 outside [0, 1]");
    r = tg_rmsprop_defaults(), r.eps = -1e-8;
    ASSERT_NULL_FAIL(tg_optim_rmsprop(&p, 1, &r), TG_EINVAL, "eps -1e-08 must be > 0");
    r = tg_rmsprop_defaults(), r.momentum = -0.9;
    ASSERT_NULL_FAIL(tg_optim_rmsprop(&p, 1, &r), TG_EINVAL, "momentum -0.9");
    r = tg_rmsprop_defaults(), r.lr = -1;
    ASSERT_NULL_FAIL(tg_optim_rmsprop(&p, 1, &r), TG_EINVAL, "lr -1");
    r = tg_rmsprop_defaults(), r.weight_decay = NAN;
    ASSERT_NULL_FAIL(tg_optim_rmsprop(&p, 1, &r), TG_EINVAL, "weight_decay nan");
    tg_tensor_free(p);
}
END_TEST

START_TEST(test_errors_handle)
{
    tg_tensor *p = param(TG_F64, TG_SHAPE(2), (double[]){1, 2});
    tg_optim *opt = tg_optim_sgd(&p, 1, NULL);
    ck_assert_ptr_nonnull(opt);
    ASSERT_FAIL(tg_optim_step(NULL), TG_EINVAL, "tg_optim_step: opt is NULL");
    ASSERT_FAIL(tg_optim_set_lr(NULL, 0.1), TG_EINVAL, "tg_optim_set_lr: opt is NULL");
    ASSERT_FAIL(tg_optim_set_lr(opt, -2), TG_EINVAL, "tg_optim_set_lr: lr -2");
    ASSERT_FAIL(tg_optim_set_lr(opt, NAN), TG_EINVAL, "lr nan");
    ck_assert(tg_optim_get_lr(opt) == 0.01);
    ck_assert(isnan(tg_optim_get_lr(NULL)));
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_optim_get_lr: opt is NULL");
    ASSERT_FAIL(tg_optim_set_step_count(opt, -1), TG_EINVAL, "count -1 is negative");
    ASSERT_FAIL(tg_optim_set_step_count(NULL, 1), TG_EINVAL, "opt is NULL");
    ASSERT_NULL_FAIL(tg_optim_state(opt, 0, "exp_avg"), TG_EINVAL,
                     "tg_optim_state: sgd has no state \"exp_avg\" (it keeps: step)");
    ASSERT_NULL_FAIL(tg_optim_state(opt, 1, "step"), TG_ERANGE, "param index 1 outside [0, 1)");
    ASSERT_NULL_FAIL(tg_optim_state(opt, -1, "step"), TG_ERANGE, "param index -1");
    ASSERT_NULL_FAIL(tg_optim_state(opt, 0, NULL), TG_EINVAL, "name is NULL");
    ASSERT_NULL_FAIL(tg_optim_state(NULL, 0, "step"), TG_EINVAL, "tg_optim_state: opt is NULL");
    ASSERT_NULL_FAIL(tg_optim_param(opt, 5), TG_ERANGE, "tg_optim_param: index 5 outside [0, 1)");
    ASSERT_NULL_FAIL(tg_optim_param(NULL, 0), TG_EINVAL, "tg_optim_param: opt is NULL");
    ck_assert_ptr_null(tg_optim_state_name(opt, 1));
    ck_assert_ptr_null(tg_optim_state_name(opt, -1));
    ck_assert_ptr_null(tg_optim_state_name(NULL, 0));
    ck_assert_str_eq(tg_optim_name(NULL), "?");
    ck_assert_int_eq(tg_optim_num_params(NULL), 0);
    ck_assert_int_eq(tg_optim_step_count(NULL), 0);
    tg_optim_free(opt);
    tg_tensor_free(p);
}
END_TEST

START_TEST(test_errors_schedule_clip)
{
    tg_tensor *p = param(TG_F64, TG_SHAPE(1), (double[]){1});
    tg_optim *opt = tg_optim_sgd(&p, 1, NULL);
    tg_schedule s = tg_schedule_step(0.1, 0, 0.5);
    ASSERT_FAIL(tg_optim_set_schedule(opt, &s), TG_EINVAL,
                "tg_optim_set_schedule: step_size 0 must be > 0");
    ck_assert(tg_optim_get_lr(opt) == 0.01); // nothing attached
    ck_assert(isnan(tg_schedule_lr(&s, 0)));
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_schedule_lr: step_size 0");
    s = tg_schedule_exponential(0.1, -0.5);
    ASSERT_FAIL(tg_optim_set_schedule(opt, &s), TG_EINVAL, "gamma -0.5 must be >= 0");
    s = tg_schedule_cosine(0.1, 0, 0);
    ASSERT_FAIL(tg_optim_set_schedule(opt, &s), TG_EINVAL, "t_max 0 must be > 0");
    s = tg_schedule_cosine(0.1, 10, -1);
    ASSERT_FAIL(tg_optim_set_schedule(opt, &s), TG_EINVAL, "eta_min -1");
    s = tg_schedule_constant(-0.1);
    ASSERT_FAIL(tg_optim_set_schedule(opt, &s), TG_EINVAL, "base_lr -0.1");
    s = tg_schedule_constant(0.1), s.warmup_steps = -2;
    ASSERT_FAIL(tg_optim_set_schedule(opt, &s), TG_EINVAL, "warmup_steps -2 is negative");
    s = tg_schedule_constant(0.1), s.kind = (tg_schedule_kind)9;
    ASSERT_FAIL(tg_optim_set_schedule(opt, &s), TG_EINVAL, "unknown schedule kind 9");
    ASSERT_FAIL(tg_optim_set_schedule(NULL, &s), TG_EINVAL, "tg_optim_set_schedule: opt is NULL");
    s = tg_schedule_constant(0.1);
    ck_assert(isnan(tg_schedule_lr(&s, -1)));
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_schedule_lr: step -1 is negative");
    ck_assert(isnan(tg_schedule_lr(NULL, 0)));
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_schedule_lr: schedule is NULL");
    ASSERT_OK(tg_optim_set_schedule(opt, NULL)); // detaching nothing is fine

    set_grad(p, (double[]){5});
    double total = -1;
    ASSERT_FAIL(tg_clip_grad_norm(NULL, 1, 1, &total), TG_EINVAL,
                "tg_clip_grad_norm: params is NULL");
    ASSERT_FAIL(tg_clip_grad_norm(&p, 0, 1, &total), TG_EINVAL, "tg_clip_grad_norm: n is 0");
    tg_tensor *with_null[2] = {p, NULL};
    ASSERT_FAIL(tg_clip_grad_norm(with_null, 2, 1, &total), TG_EINVAL, "params[1] is NULL");
    ASSERT_FAIL(tg_clip_grad_norm(&p, 1, -1, &total), TG_EINVAL, "max_norm -1 must be >= 0");
    ASSERT_FAIL(tg_clip_grad_norm(&p, 1, NAN, &total), TG_EINVAL, "max_norm nan");
    ck_assert(total == -1);
    ASSERT_FAIL(tg_clip_grad_value(NULL, 1, 1), TG_EINVAL, "tg_clip_grad_value: params is NULL");
    ASSERT_FAIL(tg_clip_grad_value(&p, -1, 1), TG_EINVAL, "tg_clip_grad_value: n is -1");
    ASSERT_FAIL(tg_clip_grad_value(with_null, 2, 1), TG_EINVAL, "params[1] is NULL");
    ASSERT_FAIL(tg_clip_grad_value(&p, 1, -0.5), TG_EINVAL, "clip -0.5 must be >= 0");
    ASSERT_FAIL(tg_clip_grad_value(&p, 1, NAN), TG_EINVAL, "clip nan");
    ck_assert(flat(tg_tensor_grad(p), 0) == 5);
    tg_optim_free(opt);
    tg_tensor_free(p);
}
END_TEST

/* ---- end to end: minimise sum((p - c)^2) through the tape ------------------ */

typedef struct e2e_case {
    const char *what;
    int steps;
    double tol;
} e2e_case;

static tg_optim *e2e_optim(int which, tg_tensor *p, int steps)
{
    tg_optim *opt = NULL;
    switch (which) {
    case 0: opt = tg_optim_sgd(&p, 1, &(tg_sgd_opts){.lr = 0.1}); break;
    case 1:
        opt = tg_optim_sgd(&p, 1, &(tg_sgd_opts){.lr = 0.05, .momentum = 0.9, .nesterov = true});
        break;
    case 2: opt = tg_optim_adam(&p, 1, &(tg_adam_opts){0.1, 0.9, 0.999, 1e-8, 0, TG_ADAM_PYTORCH});
        break;
    case 3: opt = tg_optim_adam(&p, 1, &(tg_adam_opts){0.1, 0.9, 0.999, 1e-7, 0, TG_ADAM_KERAS});
        break;
    case 4: opt = tg_optim_adamw(&p, 1, &(tg_adam_opts){0.1, 0.9, 0.999, 1e-8, 0, 0}); break;
    case 5: opt = tg_optim_rmsprop(&p, 1, &(tg_rmsprop_opts){.lr = 0.05, .alpha = 0.99,
                                                             .eps = 1e-8, .momentum = 0.5,
                                                             .centered = true});
        break;
    }
    ck_assert_ptr_nonnull(opt);
    // Adaptive methods take steps of about lr whatever the gradient: a decaying
    // lr lets them settle instead of hovering around the minimum.
    if (which >= 2) {
        tg_schedule s = tg_schedule_cosine(tg_optim_get_lr(opt), steps, 0);
        s.warmup_steps = 10;
        ASSERT_OK(tg_optim_set_schedule(opt, &s));
    }
    return opt;
}

static const e2e_case e2e_cases[] = {
    {"sgd", 100, 1e-8},      {"sgd nesterov", 200, 1e-6}, {"adam", 400, 1e-3},
    {"adam keras", 400, 1e-3}, {"adamw", 400, 1e-3},      {"rmsprop centered", 400, 1e-3},
};
enum { N_E2E = sizeof e2e_cases / sizeof e2e_cases[0] };

static void e2e(int which, tg_dtype dtype)
{
    const double target[4] = {1, -2, 3, 0.5};
    tg_tensor *p = param(dtype, TG_SHAPE(4), (double[]){0, 0, 0, 0});
    tg_tensor *c = tg_tensor_from_doubles(dtype, TG_SHAPE(4), target);
    const e2e_case *ec = &e2e_cases[which];
    tg_optim *opt = e2e_optim(which, p, ec->steps);
    tg_tape *tape = tg_tape_new();
    double first = NAN, last = NAN;
    for (int s = 0; s < ec->steps; s++) {
        tg_tensor *d = tg_sub(p, c);
        tg_tensor *loss = tg_sum(tg_mul(d, d), NULL, 0, false);
        ck_assert_msg(loss != NULL, "%s", tg_last_error());
        last = tg_tensor_item(loss);
        if (s == 0)
            first = last;
        tg_optim_zero_grad(opt);
        ASSERT_OK(tg_backward(loss));
        ASSERT_OK(tg_optim_step(opt));
        tg_tape_reset(tape);
    }
    ck_assert_msg(first == 1 + 4 + 9 + 0.25, "%s: first loss %g", ec->what, first);
    const double tol = dtype == TG_F32 ? fmax(ec->tol, 1e-5) : ec->tol;
    for (int i = 0; i < 4; i++)
        ck_assert_msg(fabs(flat(p, i) - target[i]) < tol, "%s %s: p[%d] = %.10g, want %g "
                      "(loss %g -> %g)", ec->what, tg_dtype_name(dtype), i, flat(p, i),
                      target[i], first, last);
    tg_tape_free(tape);
    tg_optim_free(opt);
    tg_tensor_free(p);
    tg_tensor_free(c);
}

START_TEST(test_e2e_f64) { e2e(_i, TG_F64); }
END_TEST

START_TEST(test_e2e_f32) { e2e(_i, TG_F32); }
END_TEST

/* ---- suite -------------------------------------------------------------- */

static Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("sgd");
    tcase_add_loop_test(tc, test_torch_f64, 0, 3);
    tcase_add_loop_test(tc, test_torch_f32, 0, 3);
    tcase_add_test(tc, test_sgd_defaults);
    tcase_add_test(tc, test_sgd_momentum_buffer);
    suite_add_tcase(s, tc);

    tc = tcase_create("adam");
    tcase_add_loop_test(tc, test_torch_f64, 3, 6);
    tcase_add_loop_test(tc, test_torch_f32, 3, 6);
    tcase_add_test(tc, test_adam_defaults);
    suite_add_tcase(s, tc);

    tc = tcase_create("adam_keras");
    tcase_add_test(tc, test_adam_keras_f64);
    tcase_add_test(tc, test_adam_keras_f32);
    tcase_add_test(tc, test_adamw_keras_f64);
    tcase_add_test(tc, test_adamw_keras_f32);
    tcase_add_test(tc, test_adam_forms_differ);
    tcase_add_test(tc, test_adam_f32_variants_same_bytes);
    suite_add_tcase(s, tc);

    tc = tcase_create("rmsprop");
    tcase_add_loop_test(tc, test_torch_f64, 6, 9);
    tcase_add_loop_test(tc, test_torch_f32, 6, 9);
    tcase_add_test(tc, test_rmsprop_defaults);
    suite_add_tcase(s, tc);

    tc = tcase_create("schedule");
    tcase_add_test(tc, test_schedule_values);
    tcase_add_test(tc, test_schedule_warmup);
    tcase_add_test(tc, test_schedule_attached);
    tcase_add_test(tc, test_schedule_to_infinity_refused);
    tcase_add_test(tc, test_getters_record_null);
    suite_add_tcase(s, tc);

    tc = tcase_create("clip");
    tcase_add_test(tc, test_clip_norm);
    tcase_add_test(tc, test_clip_norm_extremes);
    tcase_add_test(tc, test_clip_value);
    suite_add_tcase(s, tc);

    tc = tcase_create("state");
    tcase_add_test(tc, test_state_access);
    tcase_add_test(tc, test_state_restore);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, test_errors_params);
    tcase_add_test(tc, test_errors_opts);
    tcase_add_test(tc, test_errors_handle);
    tcase_add_test(tc, test_errors_schedule_clip);
    suite_add_tcase(s, tc);

    tc = tcase_create("train");
    tcase_add_loop_test(tc, test_e2e_f64, 0, N_E2E);
    tcase_add_loop_test(tc, test_e2e_f32, 0, N_E2E);
    suite_add_tcase(s, tc);
    return s;
}

TG_CHECK_MAIN(optim_suite)
