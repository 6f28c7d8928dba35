/// A lock in a class, so that tasks can share it by reference.
typealias Locked<Value> = PThreadLock<Value>
