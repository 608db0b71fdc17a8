// Enzyme stand-in: registers a legacy module pass named "enzyme", as
// Enzyme v0.0.24 does when its library is loaded, and changes nothing.
// It lets the bootstrap step and the plugin loading be tested without the
// real Enzyme source.
#include "llvm/IR/Module.h"
#include "llvm/Pass.h"

using namespace llvm;

namespace {
class EnzymeStandIn : public ModulePass {
public:
  static char ID;
  EnzymeStandIn() : ModulePass(ID) {}
  bool runOnModule(Module &) override { return false; }
};
} // namespace

char EnzymeStandIn::ID = 0;
static RegisterPass<EnzymeStandIn> Registration("enzyme", "Enzyme stand-in (does nothing)");
